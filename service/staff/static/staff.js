/* The staff console's few scripts: the simulator's chat, the CSV upload's progress bar, the live funnel. */
"use strict";

function csrfToken() {
  var meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

function element(tag, className, text) {
  var node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/* -- simulator ---------------------------------------------------------------------------------------------- */

function setUpSimulator(box) {
  var words = JSON.parse(box.getAttribute("data-words"));
  var log = document.getElementById("sim-log");
  var form = document.getElementById("sim-form");
  var input = document.getElementById("sim-text");
  var draft = document.getElementById("sim-draft");
  var messages = [];
  var busy = false;

  function settings() {
    var language = document.getElementById("sim-language");
    var channel = document.getElementById("sim-channel");
    return {
      survey: box.getAttribute("data-survey"),
      version: box.getAttribute("data-version"),
      language: language ? language.value : "es",
      channel: channel ? channel.value : "sms",
      source: draft ? draft.value : undefined
    };
  }

  function showStatus(status) {
    var shown = document.getElementById("sim-status");
    shown.setAttribute("data-status", status);
    shown.textContent = words["st_" + status] || status;
  }

  function bubble(reply) {
    var item = element("li", "bubble out");
    item.setAttribute("aria-label", words.retorno);
    item.appendChild(element("p", "text", reply.text));
    if (reply.buttons && reply.buttons.length) {
      var group = element("div", "buttons");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", words.buttons);
      reply.buttons.forEach(function (button) {
        var press = element("button", "choice", button.label);
        press.type = "button";
        press.setAttribute("data-button", button.data);
        press.addEventListener("click", function () { say({button: button.data, text: button.label}); });
        group.appendChild(press);
      });
      item.appendChild(group);
    }
    if (reply.share_number) {
      var share = element("button", "choice share", reply.share_number);
      share.type = "button";
      share.disabled = true;
      share.title = words.share_number;
      item.appendChild(share);
    }
    var meta = element("p", "meta",
      reply.encoding + " · " + reply.characters + " " + words.characters + " · " + reply.segments + " " +
      words.segments + " · " + words.running_total + " " + reply.running_total);
    meta.setAttribute("data-segments", reply.segments);
    item.appendChild(meta);
    return item;
  }

  function render(result) {
    log.textContent = "";
    result.turns.forEach(function (turn) {
      var mine = element("li", "bubble in");
      mine.setAttribute("aria-label", words.you);
      mine.appendChild(element("p", "text", turn.said));
      log.appendChild(mine);
      turn.replies.forEach(function (reply) { log.appendChild(bubble(reply)); });
    });
    document.getElementById("sim-messages").textContent = result.messages_total;
    document.getElementById("sim-segments").textContent = result.segments_total;
    document.getElementById("sim-cost").textContent = result.cost_estimate.amount.toFixed(4);
    showStatus(result.status);
    log.scrollTop = log.scrollHeight;
  }

  function run() {
    busy = true;
    var body = settings();
    body.messages = messages;
    return fetch(box.getAttribute("data-run"), {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrfToken()},
      body: JSON.stringify(body)
    }).then(function (response) { return response.json(); }).then(function (result) {
      busy = false;
      if (result.error) {
        messages.pop();
        log.appendChild(element("li", "bubble error", result.error.message));
        return;
      }
      render(result);
    }).catch(function () { busy = false; messages.pop(); });
  }

  function say(message) {
    if (busy) return;
    messages.push(message);
    run().then(function () { input.focus(); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    say(text);
  });
  document.getElementById("sim-restart").addEventListener("click", function () {
    messages = [];
    log.textContent = "";
    document.getElementById("sim-messages").textContent = "0";
    document.getElementById("sim-segments").textContent = "0";
    document.getElementById("sim-cost").textContent = "0.0000";
    showStatus("new");
    input.focus();
  });
  ["sim-language", "sim-channel"].forEach(function (id) {
    var select = document.getElementById(id);
    if (!select) return;
    select.addEventListener("change", function () {
      box.className = "phone look-" + document.getElementById("sim-channel").value;
      if (messages.length) run();
    });
  });
}

/* -- contacts upload ------------------------------------------------------------------------------------------ */

function setUpUpload(form) {
  var bar = document.getElementById("csv-progress");
  form.addEventListener("submit", function (event) {
    if (!window.FormData || !window.XMLHttpRequest) return;
    event.preventDefault();
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("X-CSRF-Token", csrfToken());
    request.upload.addEventListener("progress", function (progress) {
      if (progress.lengthComputable) {
        var share = Math.round(90 * progress.loaded / progress.total);
        bar.value = share;
        bar.textContent = share + " %";
      }
    });
    request.addEventListener("load", function () {
      bar.value = 100;
      bar.textContent = "100 %";
      var page = new DOMParser().parseFromString(request.responseText, "text/html");
      var main = page.getElementById("main");
      if (main) {
        document.getElementById("main").innerHTML = main.innerHTML;
        var bar2 = document.getElementById("csv-progress");
        if (bar2) { bar2.value = 100; bar2.textContent = "100 %"; }
        var form2 = document.getElementById("csv-form");
        if (form2) setUpUpload(form2);
        var result = document.getElementById("import-report") || document.querySelector("#main .error");
        if (result) { result.setAttribute("tabindex", "-1"); result.focus(); }
      }
    });
    request.send(new FormData(form));
  });
}

/* -- live funnel ---------------------------------------------------------------------------------------------- */

function setUpFunnel(section) {
  window.setInterval(function () {
    if (document.hidden) return;
    fetch(window.location.pathname, {credentials: "same-origin"}).then(function (response) {
      return response.text();
    }).then(function (html) {
      var page = new DOMParser().parseFromString(html, "text/html");
      var fresh = page.getElementById("funnel");
      var status = page.getElementById("campaign-status");
      if (fresh) section.innerHTML = fresh.innerHTML;
      if (status) {
        var shown = document.getElementById("campaign-status");
        shown.textContent = status.textContent;
        shown.setAttribute("data-status", status.getAttribute("data-status"));
      }
    });
  }, 3000);
}

document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("simulator");
  if (box) setUpSimulator(box);
  var upload = document.getElementById("csv-form");
  if (upload) setUpUpload(upload);
  var funnel = document.getElementById("funnel");
  if (funnel) setUpFunnel(funnel);
  var setup = document.getElementById("sim-setup");
  if (setup) {
    ["sim-survey", "sim-version"].forEach(function (id) {
      var select = document.getElementById(id);
      if (select) select.addEventListener("change", function () {
        if (id === "sim-survey") document.getElementById("sim-version").disabled = true;
        setup.submit();
      });
    });
  }
});
