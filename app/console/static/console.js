// qthumb console: live task list, live task state, and the playground's query builder.
(function () {
  "use strict";
  const csrf = (document.querySelector('input[name="csrf"]') || {}).value || "";

  // Tasks: the rows again every two seconds (HTML made and escaped by the server).
  const rows = document.getElementById("task-rows");
  if (rows) {
    setInterval(() => {
      fetch(rows.dataset.src, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
        .then((html) => { rows.innerHTML = html; })
        .catch(() => {});
    }, 2000);
  }

  // Task page: reload when the state changes, until it ends.
  const state = document.getElementById("task-state");
  if (state && state.dataset.terminal === "no") {
    const timer = setInterval(() => {
      fetch("/ui/tasks/" + state.dataset.token + "/state", { credentials: "same-origin" })
        .then((r) => r.json())
        .then((s) => {
          const bar = state.querySelector("progress");
          if (bar) bar.value = s.percent;
          if (s.status !== state.dataset.status) { clearInterval(timer); location.reload(); }
        })
        .catch(() => {});
    }, 1000);
  }

  // Playground.
  const form = document.getElementById("playground");
  if (!form) return;
  const $ = (id) => document.getElementById(id);
  const query = $("query");
  const curl = $("curl");
  const number = (id) => { const v = $(id).value.trim(); return v === "" || isNaN(Number(v)) ? v : Number(v); };
  const kind = () => (form.querySelector('input[name="source_kind"]:checked') || {}).value;
  let uploaded = null; // tus:<uuid> once a file went up

  function source() {
    if (kind() === "media") return $("media").value;
    if (kind() === "url") return $("url").value.trim();
    return uploaded || "tus:(uploaded when you press Run)";
  }
  function build() {
    const formats = [];
    if ($("o-thumbnail").checked) formats.push({ output: "thumbnail", time: number("thumbnail-time"), width: number("thumbnail-width") });
    if ($("o-thumbnails").checked) {
      const f = { output: "thumbnails", interval: number("thumbnails-interval"), width: number("thumbnails-width") };
      if ($("thumbnails-sprite").checked) { f.sprite = 1; f.columns = number("thumbnails-columns"); }
      formats.push(f);
    }
    if ($("o-mp4").checked) formats.push({ output: "mp4", width: number("mp4-width") });
    query.value = JSON.stringify({ source: source(), format: formats }, null, 2);
    refresh();
  }
  let pending = null;
  function refresh() {
    clearTimeout(pending);
    pending = setTimeout(() => {
      fetch("/ui/playground/preview", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF": csrf },
        body: JSON.stringify({ query: query.value, payload: $("payload").value || null }),
      }).then((r) => r.json()).then((answer) => {
        curl.textContent = answer.curl;
        let note = document.getElementById("query-error");
        if (!note) {
          note = document.createElement("p");
          note.id = "query-error"; note.className = "error"; note.setAttribute("role", "status");
          query.insertAdjacentElement("afterend", note);
          query.setAttribute("aria-describedby", "query-error");
        }
        note.textContent = answer.error ? "The API would refuse this query: " + answer.error : "";
      }).catch(() => {});
    }, 250);
  }
  form.querySelectorAll("fieldset:not(:last-of-type) input, fieldset:not(:last-of-type) select")
    .forEach((el) => el.addEventListener(el.type === "file" ? "change" : "input", build));
  form.querySelectorAll('input[type="radio"], input[type="checkbox"], select')
    .forEach((el) => el.addEventListener("change", build));
  query.addEventListener("input", refresh);
  $("payload").addEventListener("input", refresh);

  async function tusUpload(file) {
    const made = await fetch("/ui/playground/task", { method: "POST", credentials: "same-origin", headers: { "X-CSRF": csrf } });
    if (!made.ok) throw new Error("could not make a task for the upload");
    const task = await made.json();
    const meta = "filename " + btoa(unescape(encodeURIComponent(file.name)));
    const created = await fetch(task.upload_url, { method: "POST", headers: {
      "Tus-Resumable": "1.0.0", "Upload-Length": String(file.size), "Upload-Metadata": meta } });
    if (created.status !== 201) throw new Error("the upload was refused (" + created.status + ")");
    const location = created.headers.get("Location");
    const bar = $("upload-progress"); bar.hidden = false;
    const chunk = 8 * 1024 * 1024;
    for (let offset = 0; offset < file.size; offset += chunk) {
      const part = file.slice(offset, offset + chunk);
      const sent = await fetch(location, { method: "PATCH", headers: { "Tus-Resumable": "1.0.0",
        "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" }, body: part });
      if (sent.status !== 204) throw new Error("the upload stopped (" + sent.status + ")");
      bar.value = Math.round(100 * Math.min(file.size, offset + chunk) / file.size);
    }
    return { token: task.task_token, uuid: location.replace(/\/$/, "").split("/").pop() };
  }
  form.addEventListener("submit", async (event) => {
    if (kind() !== "upload" || uploaded) return;
    event.preventDefault();
    const file = $("upload").files[0];
    if (!file) { alert("Choose a file to upload first."); return; }
    $("run").disabled = true;
    try {
      const up = await tusUpload(file);
      uploaded = "tus:" + up.uuid;
      $("task_token").value = up.token;
      const q = JSON.parse(query.value); q.source = uploaded; query.value = JSON.stringify(q, null, 2);
      form.submit();
    } catch (err) {
      $("run").disabled = false;
      alert(String(err.message || err));
    }
  });
})();
