"""A team's tests of its own error handling against qthumb: faults on purpose, a reset between
tests, and the callbacks qthumb sends, caught by the fixture's own receiver."""

import qencode3

make_client = qencode3.client


def test_a_busy_qencode_then_a_clean_slate(qthumb):
    client = make_client(qthumb.api_key, api_url=qthumb.url)
    query = {"query": {"source": "/nowhere.mp4", "format": [{"output": "thumbnail"}]}}
    with qthumb.fault({"method": "start_encode2", "error": 8, "message": "busy", "times": 1}):
        task = client.create_task()
        task.custom_start(query)
        assert task.error == 8 and task.message == "busy"
    assert qthumb.faults() == []  # the rule went with the block
    with qthumb.fault({"task": {}, "fail_at": "downloading", "error_description": "no"}):
        task = client.create_task()
        task.custom_start(query)
        status = qthumb.wait(task.task_token)
        assert status["status"] == "error" and status["error_description"] == "no"
    removed = qthumb.reset()
    assert removed["tasks"] >= 2 and qthumb.status_or_none(task.task_token) is None


def test_callbacks_reach_the_fixtures_receiver(qthumb):
    client = make_client(qthumb.api_key, api_url=qthumb.url)
    task = client.create_task()
    task.custom_start(
        {
            "query": {
                "source": "/nowhere.mp4",
                "format": [{"output": "thumbnail"}],
                "callback_url": qthumb.callbacks.url,
            }
        }
    )
    saved = qthumb.callbacks.wait_for("saved", task.task_token)
    assert saved["status"]["status"] == "error"
    assert qthumb.callbacks.events(task.task_token) == ["queued", "error", "saved"]
