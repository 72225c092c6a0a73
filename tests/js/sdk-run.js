// Drives Qencode's official Node SDK (npm qencode-api) as a user's script would, pointed at
// qthumb: node sdk-run.js BASE_URL API_KEY QUERY_JSON  -> prints the final status as JSON.
const QencodeApiClient = require("qencode-api");

(async () => {
  const [endpoint, key, queryJson] = process.argv.slice(2);
  const client = await new QencodeApiClient({ key, endpoint });
  const task = await client.CreateTask();
  await task.StartCustom(JSON.parse(queryJson), "node-payload");
  for (let i = 0; i < 600; i++) {
    const status = await task.GetStatus();
    if (status && (status.status === "completed" || status.status === "error")) {
      console.log(JSON.stringify({ task_token: task.taskToken, upload_url: task.uploadUrl, status }));
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("task did not finish");
})().catch((e) => { console.error(e); process.exit(1); });
