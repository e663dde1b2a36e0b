/* gridflow fill page: local copies while offline, retrying submits, geolocation, focus on errors.
   Everything here enhances a plain HTML form; without it the form still posts and works. */
(function () {
  "use strict";
  var PREFIX = "gridflow:draft:";
  var retryDelay = 0, retryTimer = null;

  function form() { return document.getElementById("fill"); }
  /* Messages come translated from the page (flask-babel), keyed by name. */
  function text(name) {
    var node = document.getElementById("fill-messages");
    try { return JSON.parse(node.textContent)[name] || name; } catch (e) { return name; }
  }
  function csrf() {
    var input = document.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }
  function pairs(f) {
    var out = [];
    new FormData(f).forEach(function (value, name) {
      if (typeof value === "string" && name !== "csrf_token") out.push([name, value]);
    });
    return out;
  }
  function body(list) {
    var data = new URLSearchParams();
    list.forEach(function (p) { data.append(p[0], p[1]); });
    data.set("csrf_token", csrf());
    return data;
  }
  function read(key) {
    try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }
  function keep(f) {
    if (!f || !f.dataset.sid) return;
    try {
      localStorage.setItem(PREFIX + f.dataset.sid, JSON.stringify({
        at: Date.now(), pairs: pairs(f), draft: f.querySelector("#draft-status").getAttribute("hx-post"),
        render: f.getAttribute("hx-post").replace(/\/new$/, "/render")
      }));
    } catch (e) { /* storage full or disabled: the server copy is all we have */ }
  }
  function forget(sid, before) {
    var saved = read(PREFIX + sid);
    if (saved && (!before || saved.at <= before)) localStorage.removeItem(PREFIX + sid);
  }
  function say(text) {
    var box = document.getElementById("offline");
    if (!box) return;
    box.textContent = text || "";
    box.hidden = !text;
  }

  /* A copy of the current form in the browser, on every keystroke. */
  var typed = {}, typing = false;
  document.addEventListener("input", function (e) {
    if (e.target.form !== form()) return;
    keep(form());
    if (typing && e.target.name) typed[e.target.name] = true;
  });

  /* Text typed while a redraw of the whole form is on its way is put back into the new form. */
  document.addEventListener("htmx:beforeRequest", function (e) {
    var target = e.detail.target;
    if (target && target.id === "fill" && e.detail.elt !== form()) { typed = {}; typing = true; }
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (!e.detail.target || e.detail.target.id !== "fill") return;
    typing = false;
    var keepValues = {};
    Object.keys(typed).forEach(function (name) {
      var field = form().querySelector('[name="' + CSS.escape(name) + '"]');
      if (field && (field.tagName === "TEXTAREA" || (field.tagName === "INPUT" && !/^(radio|checkbox|file|hidden)$/.test(field.type)))) {
        keepValues[name] = field.value;
      }
    });
    document.documentElement.dataset.keep = JSON.stringify(keepValues);
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    var saved = document.documentElement.dataset.keep;
    if (!saved || !e.detail.target || (e.detail.target.id !== "fill" && e.detail.elt.id !== "fill")) return;
    delete document.documentElement.dataset.keep;
    var values = JSON.parse(saved), f = form();
    Object.keys(values).forEach(function (name) {
      var field = f && f.querySelector('[name="' + CSS.escape(name) + '"]');
      if (field) field.value = values[name];
    });
    if (Object.keys(values).length) keep(f);
  });
  document.addEventListener("change", function (e) { if (e.target.form === form()) keep(form()); });

  /* Submit and autosave: remember when each started; after a failure, say so and try again. */
  document.addEventListener("htmx:beforeRequest", function (e) {
    e.detail.elt.dataset.sentAt = String(Date.now());
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var elt = e.detail.elt, f = form(), xhr = e.detail.xhr;
    if (!f || !xhr) return;
    var ok = xhr.status >= 200 && xhr.status < 500 && e.detail.successful !== false;
    if (elt.id === "draft-status" && ok) forget(f.dataset.sid, Number(elt.dataset.sentAt));
    if (elt === f && ok) {
      retryDelay = 0;
      say("");
      if (xhr.getResponseHeader("HX-Redirect")) forget(f.dataset.sid);
    }
  });
  function failed(e) {
    var elt = e.detail.elt, f = form();
    if (!f) return;
    keep(f);
    if (elt.id === "draft-status") {
      elt.textContent = text("offlineDraft");
      return;
    }
    if (elt !== f) {
      var field = elt.closest(".field, fieldset");
      var slot = field && field.querySelector(".error");
      if (slot) { slot.textContent = text("stepFailed"); slot.hidden = false; }
      return;
    }
    retryDelay = Math.min(retryDelay ? retryDelay * 2 : 2000, 30000);
    say(text("submitFailed").replace("%(n)s", Math.round(retryDelay / 1000)));
    clearTimeout(retryTimer);
    retryTimer = setTimeout(resubmit, retryDelay);
  }
  function resubmit() {
    var f = form();
    if (f) { say(text("retrying")); htmx.trigger(f, "submit"); }
  }
  document.addEventListener("htmx:sendError", failed);
  document.addEventListener("htmx:timeout", failed);
  document.addEventListener("htmx:responseError", function (e) {
    if (e.detail.xhr && e.detail.xhr.status >= 500) failed(e);
  });
  window.addEventListener("online", function () {
    if (retryTimer) { clearTimeout(retryTimer); resubmit(); }
    sync();
  });

  /* Our own messages beside each field, not the browser's bubbles; focus the first error. */
  function prepare(root) {
    var f = form();
    if (f) f.noValidate = true;
    var bad = (root || document).querySelector("[aria-invalid=true]");
    if (bad && root && root.id === "fill") {
      var target = bad.matches("fieldset") ? bad.querySelector("input, select, textarea") : bad;
      if (target) { target.focus(); target.scrollIntoView({block: "center"}); }
    }
  }
  document.addEventListener("htmx:afterSwap", function (e) { prepare(e.detail.elt); });

  /* Geolocation: fill latitude, longitude and accuracy; say plainly when it is refused. */
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-geo]");
    if (!button) return;
    var id = button.dataset.geo, status = document.getElementById(id + "-s");
    function set(name, value) {
      var input = document.getElementById(id + "-" + name);
      if (input) {
        input.value = value;
        input.dispatchEvent(new Event("change", {bubbles: true}));
      }
    }
    if (!navigator.geolocation) {
      status.textContent = text("noGeo");
      return;
    }
    status.textContent = text("locating");
    navigator.geolocation.getCurrentPosition(function (pos) {
      set("latitude", pos.coords.latitude.toFixed(6));
      set("longitude", pos.coords.longitude.toFixed(6));
      set("accuracy", Math.round(pos.coords.accuracy));
      status.textContent = text("located").replace("%(n)s", Math.round(pos.coords.accuracy));
    }, function (err) {
      status.textContent = text(err.code === 1 ? "geoDenied" : "geoFailed");
    }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
  });

  /* Copies kept while offline: the open form is redrawn from its copy; others go to the server. */
  function restore() {
    var f = form();
    if (!f) return;
    var saved = read(PREFIX + f.dataset.sid);
    if (!saved || !navigator.onLine) return;
    fetch(saved.render, {method: "POST", body: body(saved.pairs), credentials: "same-origin",
                         headers: {"HX-Request": "true"}})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var old = form();
        old.outerHTML = html;
        htmx.process(form());
        prepare();
        var note = document.getElementById("draft-status");
        if (note) note.textContent = text("restored");
        form().dispatchEvent(new Event("change"));
      })
      .catch(function () { /* keep the copy; try again next time */ });
  }
  function sync() {
    if (!navigator.onLine) return;
    var current = form() && form().dataset.sid;
    for (var i = localStorage.length - 1; i >= 0; i--) {
      var key = localStorage.key(i);
      if (!key || key.indexOf(PREFIX) !== 0) continue;
      var sid = key.slice(PREFIX.length), saved = read(key);
      if (sid === current || !saved || !saved.draft) continue;
      (function (key, saved) {
        fetch(saved.draft, {method: "POST", body: body(saved.pairs), credentials: "same-origin",
                            headers: {"HX-Request": "true"}})
          .then(function (r) { if (r.ok) localStorage.removeItem(key); });
      })(key, saved);
    }
  }
  document.addEventListener("DOMContentLoaded", function () { prepare(); restore(); sync(); });
})();
