// data-processor UI: the few things a page cannot do with plain HTML. Uploads (XHR, for the
// progress events), deletes and profile jobs go to the JSON API; errors come back as
// problem+json and are shown with their title and detail. Loaded from this origin only (the
// Content-Security-Policy allows no inline script); messages are set with textContent only.
"use strict";

(function () {
  const HINTS = {
    401: "Your session has ended: log in again.",
    403: "The request was refused.",
    404: "It does not exist (any more).",
    408: "The upload stalled: check the connection and retry.",
    413: "The file is larger than the upload limit.",
    415: "This kind of content is not accepted.",
    429: "Too many requests: wait a moment, then retry.",
    503: "The service is busy or one of its dependencies is down: retry in a moment.",
  };

  function humanBytes(bytes) {
    const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit + 1 < units.length) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? bytes + " bytes" : value.toFixed(1) + " " + units[unit];
  }

  // Live regions stay in the page (an empty one takes no room, see app.css): a region that
  // appears together with its text is not reliably announced.
  function show(element, text, extra) {
    if (!element) return;
    element.textContent = text;
    if (extra) element.append(" ", extra);
  }

  function loginLink() {
    const link = document.createElement("a");
    link.href = "/login";
    link.textContent = "Log in";
    return link;
  }

  // "413 Payload Too Large: the body is larger than ... The file is larger than the upload limit."
  function describe(status, statusText, bodyText, contentType) {
    let title = status ? status + " " + (statusText || "") : "Network error";
    let detail = "";
    if ((contentType || "").includes("json") && bodyText) {
      try {
        const problem = JSON.parse(bodyText);
        if (problem.title) title = status + " " + problem.title;
        if (problem.detail) detail = problem.detail;
      } catch (_) {
        // Not a problem document after all: the status says enough.
      }
    }
    let text = title.trim() + (detail ? ": " + detail : "");
    if (HINTS[status]) text += ". " + HINTS[status];
    return text;
  }

  async function describeResponse(response) {
    const body = await response.text().catch(() => "");
    return describe(response.status, response.statusText, body, response.headers.get("content-type"));
  }

  function showFailure(element, status, text) {
    show(element, text, status === 401 ? loginLink() : null);
  }

  // ---- Upload with a progress bar -------------------------------------------------------------

  // The list as the server renders it now, in place of the one on the page (after an upload).
  async function refreshList() {
    const response = await fetch(window.location.pathname + window.location.search, {
      headers: { accept: "text/html" },
    }).catch(() => null);
    if (!response || !response.ok) return;
    const fresh = new DOMParser()
      .parseFromString(await response.text(), "text/html")
      .getElementById("files-section");
    const current = document.getElementById("files-section");
    if (!fresh || !current) return;
    current.replaceWith(fresh);
    setUpDeletes();
  }

  function setUpUpload(form) {
    // Read when used: a test (or a page left open across a configuration change) may change it.
    const limit = () => Number(form.dataset.maxBytes || 0);
    const input = form.querySelector("input[type=file]");
    const bar = document.getElementById("upload-progress");
    const percent = document.getElementById("upload-percent");
    const status = document.getElementById("upload-status");
    const error = document.getElementById("upload-error");
    const button = form.querySelector("button[type=submit]");

    function tooLarge(file) {
      return "“" + file.name + "” is " + humanBytes(file.size) + ", more than the limit of " +
        humanBytes(limit()) + ": it was not sent.";
    }

    input.addEventListener("change", () => {
      show(error, "");
      const file = input.files[0];
      if (file && limit() && file.size > limit()) show(error, tooLarge(file));
    });

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      show(error, "");
      show(status, "");
      const file = input.files[0];
      if (!file) {
        show(error, "Choose a file first.");
        return;
      }
      if (limit() && file.size > limit()) {
        show(error, tooLarge(file));
        return;
      }
      const data = new FormData();
      data.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/files");
      form.dataset.state = "uploading";
      button.disabled = true;
      bar.hidden = false;
      bar.max = file.size || 1;
      bar.value = 0;
      show(status, "Uploading “" + file.name + "”…");
      xhr.upload.addEventListener("progress", (e) => {
        if (!e.lengthComputable) return;
        bar.max = e.total;
        bar.value = e.loaded;
        percent.textContent = Math.floor((100 * e.loaded) / e.total) + " %";
      });
      xhr.addEventListener("load", () => {
        button.disabled = false;
        if (xhr.status === 201) {
          let created = null;
          try {
            created = JSON.parse(xhr.responseText);
          } catch (_) {
            created = null;
          }
          bar.value = bar.max;
          percent.textContent = "100 %";
          form.dataset.state = "done";
          const link = document.createElement("a");
          link.id = "uploaded-link";
          link.href = created ? "/files/" + created.id : "/files";
          link.textContent = "Open it";
          show(status, "Uploaded “" + file.name + "” (" + humanBytes(file.size) + ").", link);
          input.value = "";
          refreshList();
          return;
        }
        form.dataset.state = "failed";
        bar.hidden = true;
        percent.textContent = "";
        show(status, "");
        const text = describe(xhr.status, xhr.statusText, xhr.responseText,
          xhr.getResponseHeader("content-type"));
        showFailure(error, xhr.status, "The upload failed: " + text);
      });
      xhr.addEventListener("error", () => {
        // The server may answer 413 and close the connection before the body is sent, which
        // the browser reports as a network error: say what the likely reason is.
        button.disabled = false;
        form.dataset.state = "failed";
        bar.hidden = true;
        percent.textContent = "";
        show(status, "");
        show(error, "The upload failed: the connection closed before an answer. The upload limit " +
          "is " + humanBytes(limit()) + "; if the file is smaller, retry in a moment.");
      });
      xhr.send(data);
    });
  }

  // ---- Delete ---------------------------------------------------------------------------------

  function setUpDeletes() {
    const status = document.getElementById("list-status");
    const error = document.getElementById("list-error");
    document.querySelectorAll("button.js-delete").forEach((button) => {
      button.addEventListener("click", async () => {
        const name = button.dataset.name;
        if (!window.confirm("Delete “" + name + "”? This cannot be undone.")) return;
        show(error, "");
        button.disabled = true;
        try {
          const response = await fetch(button.dataset.url, { method: "DELETE" });
          if (response.status === 204) {
            const row = button.closest("tr");
            if (row) row.remove();
            show(status, "Deleted “" + name + "”.");
            return;
          }
          showFailure(error, response.status, "Deleting “" + name + "” failed: " +
            (await describeResponse(response)));
        } catch (_) {
          show(error, "Deleting “" + name + "” failed: the service did not answer.");
        }
        button.disabled = false;
      });
    });
  }

  // ---- Profile job, followed live -------------------------------------------------------------

  const POLL_MS = 400;

  function setUpJob(panel) {
    const button = document.getElementById("run-profile");
    const bar = document.getElementById("job-progress");
    const status = document.getElementById("job-status");
    const error = document.getElementById("job-error");
    let lastStatus = "";

    function follow(jobId) {
      panel.dataset.jobId = jobId;
      button.disabled = true;
      bar.hidden = false;
      const poll = async () => {
        let response;
        try {
          response = await fetch("/api/v1/jobs/" + encodeURIComponent(jobId), {
            headers: { accept: "application/json" },
          });
        } catch (_) {
          show(status, "The service does not answer; still trying…");
          setTimeout(poll, POLL_MS * 5);
          return;
        }
        if (!response.ok) {
          const text = await describeResponse(response);
          if (response.status === 503 || response.status === 429) {
            show(status, "Waiting: " + text);
            setTimeout(poll, POLL_MS * 5);
            return;
          }
          button.disabled = false;
          showFailure(error, response.status, "Following the profile failed: " + text);
          return;
        }
        const job = await response.json();
        const total = job.progress.bytes_total || 1;
        bar.max = total;
        bar.value = Math.min(job.progress.bytes_processed, total);
        if (job.status !== lastStatus) {
          lastStatus = job.status;
          show(status, "The profile is " + job.status + "…");
        }
        panel.dataset.jobStatus = job.status;
        if (job.status === "succeeded") {
          bar.value = bar.max;
          show(status, "The profile is ready; showing it…");
          window.location.reload();
          return;
        }
        if (job.status === "failed" || job.status === "cancelled") {
          button.disabled = false;
          bar.hidden = true;
          show(status, "");
          show(error, "The profile " + job.status + (job.error ? ": " + job.error : "."));
          return;
        }
        setTimeout(poll, POLL_MS);
      };
      poll();
    }

    button.addEventListener("click", async () => {
      show(error, "");
      button.disabled = true;
      show(status, "Starting the profile…");
      try {
        const response = await fetch("/api/v1/files/" + encodeURIComponent(panel.dataset.fileId) + "/jobs", {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify({ kind: "profile" }),
        });
        if (response.status !== 202) {
          button.disabled = false;
          show(status, "");
          showFailure(error, response.status, "Starting the profile failed: " +
            (await describeResponse(response)));
          return;
        }
        const job = await response.json();
        follow(job.id);
      } catch (_) {
        button.disabled = false;
        show(status, "");
        show(error, "Starting the profile failed: the service did not answer.");
      }
    });

    if (panel.dataset.jobId) follow(panel.dataset.jobId);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const upload = document.getElementById("upload-form");
    if (upload) setUpUpload(upload);
    setUpDeletes();
    const job = document.getElementById("job");
    if (job) setUpJob(job);
  });
})();
