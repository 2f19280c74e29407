// Mailwright webmail: keyboard shortcuts, select-all, address completion, drafts saved while
// typing, live updates from the server (Server-Sent Events). Plain script, no build step; the
// page works without it (every action is an ordinary link or form).
"use strict";
(() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const typing = (el) => el instanceof HTMLElement &&
    (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));

  // --- list: select all, current row, keyboard -------------------------------------------
  const rows = () => Array.from(document.querySelectorAll("ul.messages > li"));
  let cursor = -1;
  const focusRow = (i) => {
    const list = rows();
    if (!list.length) return;
    cursor = Math.max(0, Math.min(i, list.length - 1));
    list.forEach((li, n) => li.classList.toggle("current", n === cursor));
    list[cursor].querySelector("a.open")?.focus();
  };
  document.addEventListener("change", (event) => {
    const t = event.target;
    if (t instanceof HTMLInputElement && t.id === "select-all") {
      document.querySelectorAll('ul.messages input[name="uid"]').forEach((c) => {
        c.checked = t.checked;
      });
    }
  });

  const keys = document.getElementById("keys");
  document.querySelector("[data-show-keys]")?.addEventListener("click", () => keys?.showModal());

  const click = (selector) => {
    const el = document.querySelector(selector);
    if (el instanceof HTMLElement) { el.click(); return true; }
    return false;
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (keys?.open) return;
    const k = event.key;
    let done = true;
    if (k === "c") location.href = "/webmail/compose";
    else if (k === "/") document.getElementById("q")?.focus();
    else if (k === "j") focusRow(cursor + 1);
    else if (k === "k") focusRow(cursor - 1);
    else if (k === "o" && cursor >= 0) rows()[cursor]?.querySelector("a.open")?.click();
    else if (k === "x" && cursor >= 0) {
      const box = rows()[cursor]?.querySelector('input[name="uid"]');
      if (box instanceof HTMLInputElement) box.checked = !box.checked;
    } else if (k === "r") done = click('[data-key="r"]');
    else if (k === "a") done = click('[data-key="a"]');
    else if (k === "f") done = click('[data-key="f"]');
    else if (k === "u") done = click('[data-key="u"]');
    else if (k === "#") {
      if (!click('[data-key="#"]')) {
        const list = document.getElementById("bulk");
        const del = list?.querySelector('button[value="delete"]');
        if (del instanceof HTMLElement && list.querySelector('input[name="uid"]:checked')) del.click();
        else done = false;
      }
    } else if (k === "?") keys?.showModal();
    else done = false;
    if (done) event.preventDefault();
  });

  // --- compose: address completion and drafts saved as the user types ---------------------
  const form = document.getElementById("compose");
  if (form instanceof HTMLFormElement) {
    const list = document.getElementById("contacts");
    let asked = "";
    form.querySelectorAll("input[data-complete]").forEach((input) => {
      input.addEventListener("input", async () => {
        const value = input.value;
        const cut = value.lastIndexOf(",");
        const head = cut >= 0 ? value.slice(0, cut + 1) + " " : "";
        const word = value.slice(cut + 1).trim();
        if (word.length < 1 || word === asked) return;
        asked = word;
        const answer = await fetch("/webmail/complete?q=" + encodeURIComponent(word),
          { credentials: "same-origin" });
        if (!answer.ok || !list) return;
        const people = await answer.json();
        list.replaceChildren(...people.map((p) => {
          const option = document.createElement("option");
          option.value = head + p.text + ", ";
          option.label = p.text;
          return option;
        }));
      });
    });

    const status = document.getElementById("compose-status");
    let timer = 0;
    let saving = false;
    let dirty = false;
    const autosave = async () => {
      if (saving) { timer = window.setTimeout(autosave, 1000); return; }
      saving = true;
      dirty = false;
      const data = new FormData(form);
      data.delete("files");
      data.set("action", "autosave");
      try {
        const answer = await fetch(form.getAttribute("action"), {
          method: "POST", body: data, credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf() },
        });
        if (answer.ok) {
          const saved = await answer.json();
          form.elements.namedItem("draft_ref").value = saved.draft_ref;
          const kept = Array.from(form.querySelectorAll('input[name="keep"]'));
          kept.filter((c) => !c.checked).forEach((c) => c.closest("div")?.remove());
          kept.filter((c) => c.checked).forEach((c, i) => { c.value = saved.keep[i] || c.value; });
          if (status) status.textContent = "Draft saved";
        }
      } finally {
        saving = false;
      }
    };
    form.addEventListener("input", (event) => {
      if (event.target instanceof HTMLInputElement && event.target.type === "file") return;
      dirty = true;
      window.clearTimeout(timer);
      timer = window.setTimeout(autosave, 2000);
    });
    form.addEventListener("submit", () => { window.clearTimeout(timer); dirty = false; });
    window.addEventListener("beforeunload", (event) => { if (dirty) event.preventDefault(); });
  }

  // --- live updates ----------------------------------------------------------------------
  if (document.querySelector("nav.folders") && "EventSource" in window) {
    const source = new EventSource("/webmail/events");
    const listing = document.getElementById("listing");
    // the list as the server last sent it (the page marks rows as it is used)
    const listHtml = (el) => el.querySelector("ul.messages")?.outerHTML || "";
    let shown = listing ? listHtml(listing) : "";
    let refresh = 0;
    source.addEventListener("change", (event) => {
      const change = JSON.parse(event.data);
      setBadge(change.mailbox, change.unseen);
      if (listing && String(change.mailbox) === listing.dataset.mailbox) {
        window.clearTimeout(refresh);
        refresh = window.setTimeout(reloadList, 300);
      }
    });
    const setBadge = (mailbox, unseen) => {
      const badge = document.querySelector(`[data-unread="${mailbox}"]`);
      if (!badge) return;
      badge.textContent = String(unseen);
      badge.setAttribute("aria-label", `${unseen} unread`);
      badge.hidden = unseen === 0;
    };
    // (re)connected: catch up with whatever changed while no stream was open
    source.addEventListener("ready", async () => {
      const answer = await fetch("/webmail/counts", { credentials: "same-origin" });
      if (answer.ok) {
        const counts = await answer.json();
        Object.entries(counts).forEach(([mailbox, c]) => setBadge(mailbox, c.unseen));
      }
      if (listing) reloadList(true);
    });
    const reloadList = async (quiet) => {
      const current = document.getElementById("listing");
      if (!current || current.querySelector('input[name="uid"]:checked')) {
        if (quiet) return;
        const note = document.getElementById("live-status");
        if (note) { note.hidden = false; note.textContent = "New changes: reload to see them."; }
        return;
      }
      const answer = await fetch(location.href, { credentials: "same-origin" });
      if (!answer.ok) return;
      const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = doc.getElementById("listing");
      if (!fresh || (quiet && listHtml(fresh) === shown)) return;
      shown = listHtml(fresh);
      current.replaceWith(fresh);
      const note = document.getElementById("live-status");
      if (note) { note.hidden = false; note.textContent = "Updated"; }
      cursor = -1;
    };
  }
})();
