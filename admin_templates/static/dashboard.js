// lucent_ws admin dashboard: polls the admin API (same origin, session cookie) and
// renders with DOM nodes and textContent only, so no value is ever parsed as HTML.
(function () {
  "use strict";

  var root = document.getElementById("app");
  var prefix = root.dataset.prefix;
  var csrf = root.dataset.csrf;
  var STATS_EVERY = 1000;
  var HISTORY_EVERY = 2000;
  var SVG = "http://www.w3.org/2000/svg";
  var selectedRoom = null;
  var selectedConnection = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    return node;
  }

  function api(path, options) {
    options = options || {};
    var headers = { "Accept": "application/json" };
    if (options.method && options.method !== "GET") {
      headers["X-CSRF-Token"] = csrf;
      if (options.body !== undefined) headers["Content-Type"] = "application/json";
    }
    return fetch(prefix + path, {
      method: options.method || "GET",
      headers: headers,
      body: options.body,
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (response) {
      if (response.status === 401) {
        window.location.reload(); // the session ended: show the login page
        throw new Error("signed out");
      }
      return response.json().then(function (data) {
        return { status: response.status, ok: response.ok, data: data };
      });
    });
  }

  function setLive(state) {
    var live = $("live");
    live.dataset.state = state;
    $("live-text").textContent = state === "live" ? "live" : state;
  }

  // --- formatting --------------------------------------------------------------
  function fmtNumber(n) { return Number(n).toLocaleString("en-US"); }
  function fmtCompact(n) {
    if (n < 10000) return fmtNumber(n);
    var units = ["k", "M", "G", "T"];
    var i = -1;
    do { n /= 1000; i++; } while (n >= 1000 && i < units.length - 1);
    return n.toFixed(n < 10 ? 2 : 1) + units[i];
  }
  function fmtBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }
  function fmtDuration(s) {
    s = Math.max(0, Math.floor(s));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + String(m).padStart(2, "0") + "m";
    if (m) return m + "m " + String(s % 60).padStart(2, "0") + "s";
    return s + "s";
  }
  function fmtSince(iso) {
    var date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleTimeString();
  }
  function shortId(id) { return id.length > 13 ? id.slice(0, 8) + "…" + id.slice(-4) : id; }
  function json(value) { return JSON.stringify(value); }

  // --- totals and rooms -------------------------------------------------------------
  // /stats lists only the largest rooms, plus roomCount: the answer stays small however
  // many rooms there are; a room's members come a page at a time (the first page here).
  function renderStats(stats) {
    var rooms = Object.keys(stats.rooms).map(function (name) {
      return { name: name, members: stats.rooms[name] };
    }).sort(function (a, b) { return b.members - a.members || (a.name < b.name ? -1 : 1); });
    var evictions = Object.keys(stats.evictions).reduce(function (sum, k) { return sum + stats.evictions[k]; }, 0);
    $("stat-connections").textContent = fmtNumber(stats.connections);
    $("stat-rooms").textContent = fmtNumber(stats.roomCount);
    $("stat-messages-in").textContent = fmtCompact(stats.messagesIn);
    $("stat-messages-out").textContent = fmtCompact(stats.messagesOut);
    $("stat-bytes-out").textContent = fmtBytes(stats.bytesOut);
    $("stat-evictions").textContent = fmtNumber(evictions);
    $("stat-evictions").title = Object.keys(stats.evictions).map(function (k) {
      return k + ": " + stats.evictions[k];
    }).join(", ");
    $("stat-uptime").textContent = fmtDuration(stats.uptime);
    $("stat-heartbeat").textContent = stats.heartbeatActive ? "on" : "off";
    renderRooms(rooms, stats.roomCount);
    renderEvictions(stats.evictions);
    renderNodes(stats);
  }

  function renderEvictions(evictions) {
    var fragment = document.createDocumentFragment();
    Object.keys(evictions).sort().forEach(function (reason) {
      var row = el("tr");
      row.dataset.reason = reason;
      row.appendChild(el("td", null, reason.replace(/_/g, " ")));
      row.appendChild(el("td", "num", fmtNumber(evictions[reason])));
      fragment.appendChild(row);
    });
    $("evictions-table").tBodies[0].replaceChildren(fragment);
  }

  // stats.nodes is there only with scale-out: each live node's own figures.
  function renderNodes(stats) {
    var nodes = stats.nodes || {};
    var ids = Object.keys(nodes).sort();
    var fragment = document.createDocumentFragment();
    ids.forEach(function (id) {
      var node = nodes[id];
      var row = el("tr", node.self ? "selected" : null);
      row.dataset.node = id;
      var idCell = el("td", "cell-id", shortId(id) + (node.self ? " (this node)" : ""));
      idCell.title = id;
      row.appendChild(idCell);
      row.appendChild(el("td", "num", fmtNumber(node.connections)));
      row.appendChild(el("td", "num", fmtNumber(node.rooms)));
      row.appendChild(el("td", "num", fmtCompact(node.messagesIn)));
      row.appendChild(el("td", "num", fmtCompact(node.messagesOut)));
      row.appendChild(el("td", "num", fmtNumber(node.undelivered)));
      row.appendChild(el("td", null, fmtDuration(node.uptime)));
      fragment.appendChild(row);
    });
    $("nodes-table").tBodies[0].replaceChildren(fragment);
    $("nodes-table").hidden = !ids.length;
    $("nodes-empty").hidden = ids.length > 0;
    $("nodes-hint").textContent = ids.length
      ? fmtNumber(ids.length) + (ids.length === 1 ? " node" : " nodes") + " · broker " + stats.broker
      : "";
  }

  // --- policies: fixed at startup, read once ------------------------------------------
  var policiesShown = false;
  function policyRow(policy, isDefault) {
    var row = el("tr");
    row.dataset.pattern = policy.pattern;
    row.appendChild(el("td", "mono", isDefault ? policy.pattern + " (default)" : policy.pattern));
    row.appendChild(el("td", null, !policy.presence ? "off" : policy.join_leave ? "on, diffs" : "on"));
    row.appendChild(el("td", null, policy.presence_info.length ? policy.presence_info.join(", ") : "—"));
    row.appendChild(el("td", "num", policy.history_size ? fmtNumber(policy.history_size) : "off"));
    row.appendChild(el("td", "num", policy.history_size ? fmtDuration(policy.history_ttl) : "—"));
    row.appendChild(el("td", null, policy.client_publish === "none" ? "no (server only)" : "members"));
    row.appendChild(el("td", "num", policy.max_members ? fmtNumber(policy.max_members) : "no limit"));
    return row;
  }

  function refreshPolicies() {
    if (policiesShown) return Promise.resolve();
    return api("policies").then(function (res) {
      var fragment = document.createDocumentFragment();
      res.data.policies.forEach(function (policy) { fragment.appendChild(policyRow(policy, false)); });
      fragment.appendChild(policyRow(res.data.default, true));
      $("policies-table").tBodies[0].replaceChildren(fragment);
      policiesShown = true;
    });
  }

  function renderRooms(rooms, total) {
    var body = $("rooms-table").tBodies[0];
    var max = rooms.length ? rooms[0].members : 1;
    var fragment = document.createDocumentFragment();
    var options = document.createDocumentFragment();
    rooms.forEach(function (room) {
      var row = el("tr", "clickable" + (room.name === selectedRoom ? " selected" : ""));
      row.dataset.room = room.name;
      row.appendChild(el("td", null, room.name));
      row.appendChild(el("td", "num", fmtNumber(room.members)));
      var barCell = el("td", "bar-cell");
      var track = el("div", "bar-track");
      var bar = el("div", "bar");
      bar.style.width = Math.max(2, Math.round(room.members / max * 100)) + "%";
      track.appendChild(bar);
      barCell.appendChild(track);
      row.appendChild(barCell);
      row.addEventListener("click", function () { selectRoom(room.name); });
      fragment.appendChild(row);
      var option = el("option");
      option.value = room.name;
      options.appendChild(option);
    });
    body.replaceChildren(fragment);
    $("room-options").replaceChildren(options);
    $("rooms-empty").hidden = rooms.length > 0;
    var count = total === 1 ? "1 room" : fmtNumber(total) + " rooms";
    $("rooms-count").textContent = !rooms.length ? "" :
      rooms.length < total ? "largest " + rooms.length + " of " + count : count;
  }

  function selectRoom(name) {
    selectedRoom = name;
    $("broadcast-room").value = name;
    refreshRoom();
    Array.prototype.forEach.call($("rooms-table").tBodies[0].rows, function (row) {
      row.classList.toggle("selected", row.dataset.room === name);
    });
  }

  function refreshRoom() {
    if (selectedRoom === null) return Promise.resolve();
    var name = selectedRoom;
    return api("rooms/" + encodeURIComponent(name)).then(function (res) {
      if (name !== selectedRoom) return;
      $("room-title").textContent = "Room · " + name;
      var body = $("members-table").tBodies[0];
      if (!res.ok) {
        $("room-hint").textContent = "this room is empty now";
        body.replaceChildren();
        return refreshRoomExtras(name);
      }
      var shown = res.data.members.length, total = res.data.total;
      $("room-hint").textContent = (shown < total ? "first " + shown + " of " : "") +
        fmtNumber(total) + (total === 1 ? " member" : " members");
      var fragment = document.createDocumentFragment();
      res.data.members.forEach(function (member) {
        var row = el("tr", "clickable" + (member.id === selectedConnection ? " selected" : ""));
        row.dataset.id = member.id;
        var idCell = el("td", "cell-id", shortId(member.id));
        idCell.title = member.id;
        row.appendChild(idCell);
        row.appendChild(el("td", "cell-meta", Object.keys(member.meta).length ? json(member.meta) : "—"));
        row.addEventListener("click", function () { selectConnection(member.id); });
        fragment.appendChild(row);
      });
      body.replaceChildren(fragment);
      return refreshRoomExtras(name);
    });
  }

  function refreshRoomExtras(name) {
    return Promise.all([refreshRoomPresence(name), refreshRoomMessages(name)]);
  }

  // A presence room: its members grouped by user (409 where the room has no presence).
  function refreshRoomPresence(name) {
    return api("rooms/" + encodeURIComponent(name) + "/presence").then(function (res) {
      if (name !== selectedRoom) return;
      $("room-presence").hidden = !res.ok;
      if (!res.ok) return;
      var users = Object.keys(res.data.members).sort();
      $("presence-count").textContent = fmtNumber(users.length) +
        (users.length === 1 ? " user, " : " users, ") + fmtNumber(res.data.count) + " connections";
      var fragment = document.createDocumentFragment();
      users.forEach(function (user) {
        var entries = res.data.members[user];
        var row = el("tr");
        row.appendChild(el("td", "cell-id", user));
        row.appendChild(el("td", "num", String(entries.length)));
        row.appendChild(el("td", "cell-meta", json(entries[0].info)));
        fragment.appendChild(row);
      });
      $("presence-table").tBodies[0].replaceChildren(fragment);
    });
  }

  // A room with history: its newest kept messages (404 where the room keeps none).
  function refreshRoomMessages(name) {
    return api("rooms/" + encodeURIComponent(name) + "/history?limit=20").then(function (res) {
      if (name !== selectedRoom) return;
      $("room-history").hidden = !res.ok;
      if (!res.ok) return;
      $("history-position").textContent = "offset " + fmtNumber(res.data.offset) +
        " · epoch " + res.data.epoch;
      var fragment = document.createDocumentFragment();
      res.data.messages.slice().reverse().forEach(function (message) {
        var row = el("tr");
        row.appendChild(el("td", "num", String(message.offset)));
        row.appendChild(el("td", "cell-id", message.from === null ? "server" : shortId(message.from)));
        row.appendChild(el("td", "cell-meta", json(message.payload)));
        fragment.appendChild(row);
      });
      $("history-table").tBodies[0].replaceChildren(fragment);
    });
  }

  // --- connections ------------------------------------------------------------------
  function renderConnections(list) {
    var body = $("connections-table").tBodies[0];
    var fragment = document.createDocumentFragment();
    list.connections.forEach(function (conn) {
      var row = el("tr", "clickable" + (conn.id === selectedConnection ? " selected" : ""));
      row.dataset.id = conn.id;
      var idCell = el("td", "cell-id", shortId(conn.id));
      idCell.title = conn.id;
      row.appendChild(idCell);
      row.appendChild(el("td", null, conn.remote || "—"));
      row.appendChild(el("td", "num", String(conn.rooms.length)));
      row.appendChild(el("td", null, fmtSince(conn.connectedAt)));
      row.addEventListener("click", function () { selectConnection(conn.id); });
      fragment.appendChild(row);
    });
    body.replaceChildren(fragment);
    $("connections-empty").hidden = list.total > 0;
    $("connections-count").textContent = list.total > list.connections.length
      ? "newest " + list.connections.length + " of " + fmtNumber(list.total)
      : (list.total ? fmtNumber(list.total) + " total" : "");
  }

  function selectConnection(id) {
    selectedConnection = id;
    $("kick-result").hidden = true;
    refreshConnection();
  }

  function refreshConnection() {
    if (selectedConnection === null) return Promise.resolve();
    var id = selectedConnection;
    return api("connections/" + encodeURIComponent(id)).then(function (res) {
      if (id !== selectedConnection) return;
      var found = res.ok;
      $("connection-detail").hidden = !found;
      $("kick").disabled = !found;
      $("connection-hint").hidden = found;
      if (!found) {
        $("connection-hint").textContent = "Connection " + shortId(id) + " is gone.";
        return;
      }
      var c = res.data;
      $("detail-id").textContent = c.id;
      $("detail-remote").textContent = c.remote || "—";
      $("detail-since").textContent = fmtSince(c.connectedAt) + " (" + fmtDuration(c.connectedFor) + " ago)";
      $("detail-idle").textContent = fmtDuration(c.idleFor) + " ago";
      var rooms = $("detail-rooms");
      rooms.replaceChildren();
      if (!c.rooms.length) rooms.textContent = "—";
      c.rooms.forEach(function (room) { rooms.appendChild(el("span", "chip", room)); });
      $("detail-meta").textContent = JSON.stringify(c.meta, null, 2);
    });
  }

  $("kick").addEventListener("click", function () {
    var id = selectedConnection;
    if (id === null) return;
    var button = $("kick");
    button.disabled = true;
    api("connections/" + encodeURIComponent(id), { method: "DELETE" }).then(function (res) {
      var result = $("kick-result");
      result.hidden = false;
      result.className = "alert " + (res.ok ? "alert-ok" : "alert-error");
      result.textContent = res.ok ? "Disconnected " + shortId(id) + " (close code 4001)." : res.data.message;
      return refreshAll();
    }).catch(function () { button.disabled = false; });
  });

  // --- broadcast --------------------------------------------------------------------
  $("broadcast-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var result = $("broadcast-result");
    var textarea = $("broadcast-payload");
    var payload;
    function show(ok, text) {
      result.hidden = false;
      result.className = "alert " + (ok ? "alert-ok" : "alert-error");
      result.textContent = text;
    }
    try {
      payload = JSON.parse(textarea.value);
    } catch (err) {
      textarea.setAttribute("aria-invalid", "true");
      show(false, "The payload is not valid JSON: " + err.message);
      return;
    }
    textarea.removeAttribute("aria-invalid");
    var room = $("broadcast-room").value.trim();
    var body = { payload: payload };
    if (room) body.room = room;
    $("broadcast-send").disabled = true;
    api("broadcast", { method: "POST", body: JSON.stringify(body) }).then(function (res) {
      if (res.ok) {
        var n = res.data.delivered;
        show(true, "Delivered to " + fmtNumber(n) + (n === 1 ? " connection" : " connections") +
          (room ? " in " + room : "") + ".");
      } else if (res.data.fields) {
        show(false, Object.keys(res.data.fields).map(function (k) {
          return k + ": " + [].concat(res.data.fields[k]).join(" ");
        }).join("; "));
      } else {
        show(false, res.data.message || "The broadcast failed.");
      }
    }).catch(function () {
      show(false, "The server did not answer.");
    }).then(function () { $("broadcast-send").disabled = false; });
  });

  // --- charts -----------------------------------------------------------------------
  function niceMax(value) {
    if (value <= 4) return 4;
    var step = Math.pow(10, Math.floor(Math.log10(value)));
    var candidates = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < candidates.length; i++) {
      if (candidates[i] * step >= value) return candidates[i] * step;
    }
    return 10 * step;
  }

  function drawChart(node, samples, series) {
    var width = Math.max(200, node.clientWidth || 600);
    var height = Math.max(100, node.clientHeight || 160);
    var left = 36, right = 8, top = 8, bottom = 20;
    var w = width - left - right, h = height - top - bottom;
    node.setAttribute("viewBox", "0 0 " + width + " " + height);
    node.replaceChildren();
    var max = 0;
    series.forEach(function (s) {
      samples.forEach(function (p) { max = Math.max(max, p[s.key]); });
    });
    max = niceMax(max);
    for (var g = 0; g <= 4; g++) {
      var y = top + h - h * g / 4;
      node.appendChild(svg("line", { x1: left, x2: left + w, y1: y, y2: y, "class": "grid-line" }));
      var label = svg("text", { x: left - 6, y: y + 3, "text-anchor": "end", "class": "axis-label" });
      label.textContent = fmtCompact(Math.round(max * g / 4 * 100) / 100);
      node.appendChild(label);
    }
    if (samples.length < 2) return;
    var t0 = samples[0].t, t1 = samples[samples.length - 1].t;
    var span = Math.max(1, t1 - t0);
    function x(p) { return left + (p.t - t0) / span * w; }
    var minutes = span / 60;
    [0, 0.5, 1].forEach(function (f) {
      var text = svg("text", { x: left + f * w, y: height - 4, "class": "axis-label",
        "text-anchor": f === 0 ? "start" : (f === 1 ? "end" : "middle") });
      var ago = (1 - f) * minutes;
      text.textContent = f === 1 ? "now" : "-" + (ago >= 1 ? ago.toFixed(ago < 10 ? 1 : 0) + "m" : Math.round(ago * 60) + "s");
      node.appendChild(text);
    });
    series.forEach(function (s) {
      var points = samples.map(function (p) {
        return x(p).toFixed(1) + "," + (top + h - p[s.key] / max * h).toFixed(1);
      });
      if (s.area) {
        node.appendChild(svg("polygon", {
          points: left + "," + (top + h) + " " + points.join(" ") + " " + (left + w) + "," + (top + h),
          "class": s.area
        }));
      }
      node.appendChild(svg("polyline", { points: points.join(" "), "class": "series " + s.cls }));
    });
  }

  var lastHistory = [];
  function renderHistory(history) {
    lastHistory = history.samples;
    drawChart($("chart-connections"), lastHistory, [
      { key: "connections", cls: "series-connections", area: "area-connections" }
    ]);
    drawChart($("chart-messages"), lastHistory, [
      { key: "messagesInPerSec", cls: "series-in" },
      { key: "messagesOutPerSec", cls: "series-out" }
    ]);
  }
  window.addEventListener("resize", function () { renderHistory({ samples: lastHistory }); });

  // --- polling ----------------------------------------------------------------------
  function refreshAll() {
    return Promise.all([
      api("stats").then(function (res) { renderStats(res.data); }),
      api("connections?limit=50").then(function (res) { renderConnections(res.data); }),
      refreshRoom(),
      refreshConnection(),
      refreshPolicies()
    ]).then(function () { setLive("live"); }, function () { setLive("offline"); });
  }

  function refreshHistory() {
    return api("stats/history").then(function (res) { renderHistory(res.data); }, function () {});
  }

  function loop(fn, every) {
    fn().then(function () { setTimeout(function () { loop(fn, every); }, every); });
  }

  loop(refreshAll, STATS_EVERY);
  loop(refreshHistory, HISTORY_EVERY);
})();
