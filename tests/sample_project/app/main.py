OWNER = "the team's app"


def create_app() -> dict[str, str]:
    return {"title": OWNER}
