// AWE's pages: the few things that need a script. No build step, no framework.
"use strict";

function showSelections() {
  const target = document.getElementById("target");
  if (!target) return;
  const option = target.selectedOptions[0];
  const takes = new Set((option.dataset.selections || "").split(" "));
  document.querySelectorAll("[data-selection]").forEach((el) => {
    el.hidden = !takes.has(el.dataset.selection);
  });
  document.querySelectorAll("[data-pars-for]").forEach((el) => {
    el.hidden = el.dataset.parsFor !== target.value;
  });
}

function toggleTree(open) {
  document.querySelectorAll("#plan details").forEach((d) => { d.open = open; });
}

async function followJobs() {
  const table = document.getElementById("jobs");
  const single = document.getElementById("job-state");
  if (!table && !single) return;
  const url = single ? `/api/jobs/${single.dataset.job}` : "/api/jobs";
  const tick = async () => {
    let jobs;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      jobs = await response.json();
    } catch (err) {
      return;
    }
    if (single) {
      if (jobs.state !== single.textContent) window.location.reload();
      return;
    }
    for (const job of jobs) {
      const row = table.querySelector(`tr[data-job="${job.object_id}"]`);
      if (!row) { window.location.reload(); return; }
      const state = row.querySelector(".state");
      if (state.textContent !== job.state) {
        state.textContent = job.state;
        row.className = `state-${job.state}`;
        if (!["queued", "running"].includes(job.state)) {
          row.querySelectorAll("form.cancel").forEach((f) => f.remove());
        }
      }
      const bar = row.querySelector("progress");
      bar.max = job.total || 1;
      bar.value = job.done;
      row.querySelector(".count").textContent = `${job.done}/${job.total}`;
      row.querySelector(".current").textContent = job.current;
      row.querySelector(".started").textContent = job.started || "";
      row.querySelector(".finished").textContent = job.finished || "";
    }
  };
  setInterval(tick, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  const target = document.getElementById("target");
  if (target) {
    target.addEventListener("change", showSelections);
    showSelections();
  }
  document.querySelectorAll("[data-toggle]").forEach((button) => {
    button.addEventListener("click", () => toggleTree(button.dataset.toggle === "open"));
  });
  followJobs();
});
