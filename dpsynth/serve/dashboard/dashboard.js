/* dpsynth dashboard: a read-only view of the service's ledgers for officers and auditors.
 *
 * No build step, no external resources (the page's CSP allows only this origin).  Every
 * string that comes from the service -- purposes, parameters, names, error messages -- is
 * put into the page with textContent or as an attribute value through the DOM, never as
 * HTML: ledger entries carry researcher-supplied text.
 *
 * Login: the page is opened at /dashboard/#login=CODE; the code is taken from the fragment,
 * the fragment is removed from the address bar, and the code is exchanged once for an
 * HttpOnly session cookie (POST /dashboard/session).  The cookie is accepted for GET
 * requests of the read-only routes only.
 */
(function () {
  "use strict";

  var API = "/api/v1";
  var REFRESH_MS = 10000;
  var PAGE_SIZE = 50;
  var SVG_NS = "http://www.w3.org/2000/svg";

  var state = {
    timer: null,
    busy: false,
    again: false,
    signedIn: false,
    epoch: 0,         // bumped on sign-out: a refresh begun before it draws nothing
    pages: {},        // dataset -> page of the entries table (0 = newest)
    expanded: {},     // dataset -> {sequence: true} rows opened by the reader
    zoom: {},         // dataset -> "auto" | "whole"
    rendered: {},     // dataset -> the data last drawn (to redraw only on change)
    loginMessage: null
  };

  // ------------------------------------------------------------------ DOM helpers

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.setAttribute("class", v);
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    });
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    if (typeof child === "string" || typeof child === "number") child = document.createTextNode(String(child));
    node.appendChild(child);
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // ------------------------------------------------------------------ formatting

  function pct(x) {
    if (typeof x !== "number" || !isFinite(x)) return "–";
    var p = x * 100;
    if (p === 0) return "0%";
    if (Math.abs(p) < 0.01) return "<0.01%";
    if (Math.abs(p) < 10) return Number(p.toPrecision(2)) + "%";
    return Number(p.toFixed(1)) + "%";
  }

  function num(x, digits) {
    if (typeof x !== "number" || !isFinite(x)) return "–";
    if (x === 0) return "0";
    if (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e6) return x.toExponential(2).replace(/\.?0+e/, "e");
    return Number(x.toPrecision(digits || 4)).toString();
  }

  function shortHash(h) { return typeof h === "string" ? h.slice(0, 12) + "…" : "–"; }

  function clock(d) {
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  }

  // ------------------------------------------------------------------ HTTP

  function HttpError(status, message) {
    this.status = status;
    this.message = message;
  }

  function getJSON(path) {
    return fetch(API + path, {credentials: "same-origin", cache: "no-store", headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (r.ok) return r.json();
        return r.json().then(function (body) {
          var msg = body && body.error && body.error.message;
          throw new HttpError(r.status, typeof msg === "string" ? msg : r.statusText);
        }, function () { throw new HttpError(r.status, r.statusText || ("HTTP " + r.status)); });
      }, function () { throw new HttpError(0, "the service cannot be reached"); });
  }

  function settle(promise) {
    return promise.then(function (value) { return {ok: true, value: value}; },
                        function (error) { return {ok: false, error: error}; });
  }

  function post(path) {
    var options = {method: "POST", credentials: "same-origin", cache: "no-store", headers: {}};
    if (arguments.length > 1) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(arguments[1]);
    }
    return fetch(path, options);
  }

  // ------------------------------------------------------------------ login and session

  /* Exchange the code in the address's fragment (if any) for a session cookie.  The fragment
   * leaves the address bar (and the history) first, whatever happens next. */
  function loginFromFragment() {
    var hash = window.location.hash;
    if (hash.indexOf("#login=") !== 0) return Promise.resolve(null);
    history.replaceState(null, "", window.location.pathname + window.location.search);
    var code = hash.slice("#login=".length);
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(code)) {
      return Promise.resolve("This login link is malformed. Ask for a new one.");
    }
    return post("/dashboard/session", {code: code}).then(function (r) {
      if (r.ok) return null;
      if (r.status === 429) return "Too many failed logins from this address: wait a minute, then ask for a new link.";
      return "This login link is unknown, already used or expired (a link works once, within two minutes). " +
             "Ask for a new one.";
    }, function () { return "The service cannot be reached."; });
  }

  function showNotice(text) {
    var n = $("notice");
    if (text) { n.textContent = text; n.hidden = false; } else { n.textContent = ""; n.hidden = true; }
  }

  function showLogin(message) {
    state.epoch += 1;
    state.signedIn = false;
    stopTimer();
    state.rendered = {};
    $("login-command").textContent = "dpsynth service login " + window.location.origin + " --key YOUR-KEY";
    $("login").hidden = false;
    $("session").hidden = true;
    $("loading").hidden = true;
    $("dataset-nav").hidden = true;
    clear($("dataset-nav"));
    clear($("datasets"));
    showNotice(message || null);
  }

  function showSignedIn(me) {
    state.signedIn = true;
    $("login").hidden = true;
    $("session").hidden = false;
    $("who-name").textContent = me.name;
    $("who-roles").textContent = "(" + (me.roles || []).join(", ") + ")";
  }

  function logout() {
    stopTimer();
    state.epoch += 1;
    post("/dashboard/logout").then(function () { showLogin("You are logged out."); },
                                    function () { showLogin("You are logged out of this page; the service could not be reached."); });
  }

  function startTimer() {
    if (state.timer === null) state.timer = setInterval(refresh, REFRESH_MS);
  }

  function stopTimer() {
    if (state.timer !== null) { clearInterval(state.timer); state.timer = null; }
  }

  // ------------------------------------------------------------------ loading

  function entriesWindow(total, page) {
    var hi = Math.max(0, total - page * PAGE_SIZE);
    var lo = Math.max(0, hi - PAGE_SIZE);
    return {after: lo, limit: Math.max(1, hi - lo), lo: lo, hi: hi};
  }

  function loadDataset(d) {
    var name = d.name;
    var base = "/ledgers/" + encodeURIComponent(name);
    return Promise.all([settle(getJSON(base + "/summary")), settle(getJSON(base + "/verify")),
                        settle(getJSON(base + "/head"))]).then(function (r) {
      var summary = r[0], verify = r[1], head = r[2];
      var total = summary.ok ? summary.value.entries : (verify.ok ? verify.value.entries : 0);
      var pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
      var page = Math.min(state.pages[name] || 0, pages - 1);
      state.pages[name] = page;
      var w = entriesWindow(total, page);
      var entries = total === 0 ? Promise.resolve({ok: true, value: {entries: [], total: 0}})
        : settle(getJSON(base + "/entries?after=" + w.after + "&limit=" + w.limit));
      return entries.then(function (e) {
        return {dataset: d, summary: summary, verify: verify, head: head, entries: e, page: page, pages: pages,
                window: w, total: total};
      });
    });
  }

  function unauthorised(results) {
    return results.some(function (x) {
      return ["summary", "verify", "head", "entries"].some(function (k) {
        return x[k] && !x[k].ok && x[k].error && x[k].error.status === 401;
      });
    });
  }

  function refresh() {
    if (state.busy) { state.again = true; return Promise.resolve(); }
    state.busy = true;
    var epoch = state.epoch;
    var current = function () { return epoch === state.epoch; };
    var done = function () {
      state.busy = false;
      if (state.again) { state.again = false; refresh(); }
    };
    return getJSON("/me").then(function (me) {
      if (!current()) return;
      showSignedIn(me);
      return getJSON("/datasets").then(function (datasets) {
        return Promise.all(datasets.map(loadDataset)).then(function (results) {
          if (!current()) return;
          if (unauthorised(results)) { showLogin("Your session has ended. Ask for a new login link."); return; }
          render(results);
          $("loading").hidden = true;
          $("updated").textContent = clock(new Date());
          $("updated").setAttribute("datetime", new Date().toISOString());
          showNotice(state.loginMessage);
          state.loginMessage = null;
          startTimer();
        });
      });
    }).catch(function (err) {
      if (!current()) return;
      if (err && err.status === 401) {
        showLogin(state.loginMessage);
        state.loginMessage = null;
      } else {
        $("loading").hidden = true;
        showNotice("Could not refresh: " + (err && err.message ? err.message : String(err)) +
                   ". Showing the last data read; trying again in 10 s.");
        if (state.signedIn) startTimer();
      }
    }).then(done, done);
  }

  // ------------------------------------------------------------------ rendering

  function render(results) {
    var nav = $("dataset-nav"), root = $("datasets");
    var names = results.map(function (r) { return r.dataset.name; });
    // Drop sections of datasets that are gone.
    Array.prototype.slice.call(root.children).forEach(function (section) {
      if (names.indexOf(section.getAttribute("data-dataset")) < 0) root.removeChild(section);
    });
    clear(nav);
    nav.hidden = results.length < 2;
    if (results.length > 1) {
      append(nav, el("ul", null, results.map(function (r, i) {
        return el("li", null, el("a", {href: "#dataset-" + i, text: r.dataset.name}));
      })));
    }
    if (results.length === 0) {
      clear(root);
      append(root, el("p", {class: "empty", text: "The service holds no datasets."}));
      return;
    }
    var empty = root.querySelector("p.empty");
    if (empty) root.removeChild(empty);
    results.forEach(function (r, i) {
      var name = r.dataset.name;
      var key = JSON.stringify([r.summary, r.verify, r.head, r.entries, r.page, state.zoom[name] || "auto",
                                state.expanded[name] || {}]);
      var old = root.querySelector('section[data-dataset="' + cssEscape(name) + '"]');
      if (old && state.rendered[name] === key) return;
      state.rendered[name] = key;
      var section = datasetSection(r, i);
      if (old) root.replaceChild(section, old); else root.appendChild(section);
    });
  }

  function cssEscape(s) {
    return (window.CSS && CSS.escape) ? CSS.escape(s) : String(s).replace(/["\\]/g, "\\$&");
  }

  function datasetSection(r, index) {
    var d = r.dataset, name = d.name;
    var policyName = d.policy && d.policy.dataset && d.policy.dataset.name;
    var headingId = "dataset-" + index + "-title";
    var section = el("section", {class: "dataset", id: "dataset-" + index, "data-dataset": name,
                                 "aria-labelledby": headingId});
    append(section, el("header", {class: "dataset-head"},
      el("h2", {id: headingId}, el("span", {class: "dataset-name", text: name}),
         policyName && policyName !== name ? el("span", {class: "dataset-policy", text: " — " + policyName}) : null),
      el("a", {class: "button download", href: API + "/ledgers/" + encodeURIComponent(name) + "/export",
               download: name + "-ledger.jsonl", text: "Download the ledger (JSONL)"})));
    append(section, verificationBlock(r));
    if (r.summary.ok) {
      var s = r.summary.value;
      append(section, headline(s, r.verify.ok && r.verify.value.ok));
      append(section, chartBlock(name, s));
      append(section, el("div", {class: "columns"},
        spendTable("Spend per person", "Person", s.by_person, s.person_share || {}, "person"),
        spendTable("Spend per generator", "Generator", s.by_generator, s.generator_share || {}, "generator")));
    } else {
      append(section, el("p", {class: "error-box", role: "alert",
                               text: "The ledger's summary could not be read: " + r.summary.error.message}));
    }
    append(section, entriesBlock(r));
    return section;
  }

  function verificationBlock(r) {
    var headText = null;
    if (r.head.ok) {
      headText = "signed head #" + r.head.value.sequence + ":" + shortHash(r.head.value.entry_hash);
    }
    var sameHead = r.head.ok && r.verify.ok && r.verify.value.head &&
                   r.verify.value.head.sequence === r.head.value.sequence &&
                   r.verify.value.head.entry_hash === r.head.value.entry_hash;
    if (!r.verify.ok) {
      return el("div", {class: "verify bad", role: "alert"},
        el("p", {class: "verify-title", text: "Verification could not run"}),
        el("p", {text: r.verify.error.message}));
    }
    var v = r.verify.value;
    if (v.ok) {
      var h = v.head ? "head #" + v.head.sequence + ":" + shortHash(v.head.entry_hash) : "no head";
      return el("div", {class: "verify ok", role: "status"},
        el("span", {class: "verify-mark", "aria-hidden": "true", text: "✔"}),
        el("span", {class: "verify-text", text: "verified: " + v.entries + " entries, " + h}),
        el("span", {class: "verify-detail", text: " — every signature, the hash chain, the genesis and every running " +
                                                  "total check out" + (sameHead ? ", and the head is the one the service signed" :
                                                  (headText ? "; the service reports the " + headText : "")) + "."}));
    }
    var problems = v.problems || [];
    return el("div", {class: "verify bad", role: "alert"},
      el("p", {class: "verify-title"},
        el("span", {class: "verify-mark", "aria-hidden": "true", text: "✖ "}),
        "Ledger verification FAILED — " + problems.length + (problems.length === 1 ? " problem" : " problems") +
        ". The numbers below are read from entries that do not verify: do not trust them."),
      el("ul", {class: "problems"}, problems.map(function (p) {
        return el("li", null,
          el("strong", {text: p.sequence === null || p.sequence === undefined ? "ledger" : "entry #" + p.sequence}),
          ": " + p.message);
      })),
      headText ? el("p", {class: "verify-head", text: "The service's " + headText}) : null);
  }

  function headline(s, verified) {
    var b = s.budget || {};
    var bar = el("div", {class: "meter", role: "img", "aria-label": pct(s.fraction_used) + " of the budget used"});
    var fill = el("div", {class: "meter-fill" + (s.fraction_used >= 0.9 ? " high" : "")});
    fill.style.width = Math.max(0, Math.min(100, s.fraction_used * 100)) + "%";
    append(bar, fill);
    return el("div", {class: "headline" + (verified ? "" : " unverified")},
      el("dl", {class: "figures"},
        el("div", {class: "figure"}, el("dt", {text: "Budget used"}), el("dd", {class: "big used", text: pct(s.fraction_used)})),
        el("div", {class: "figure"}, el("dt", {text: "Budget left"}), el("dd", {class: "big left", text: pct(s.fraction_left)})),
        el("div", {class: "figure"}, el("dt", {text: "ε spent (filter)"}),
           el("dd", {class: "big"}, num(s.epsilon_spent, 3), el("span", {class: "of", text: " of ε = " + num(b.epsilon)}))),
        el("div", {class: "figure"}, el("dt", {text: "at δ"}), el("dd", {class: "big", text: num(b.delta)})),
        typeof s.epsilon_curve === "number"
          ? el("div", {class: "figure"}, el("dt", {text: "ε (full curve)"}), el("dd", {class: "big", text: num(s.epsilon_curve, 3)}))
          : null,
        el("div", {class: "figure"}, el("dt", {text: "Entries"}), el("dd", {class: "big", text: String(s.entries)}))),
      bar,
      el("p", {class: "note", text: "Budget used is the Rényi filter's cost at its fixed order as a share of the budget. " +
        "The filter's ε includes a fixed term from δ, so it is above zero before any charge; the full-curve ε is the " +
        "tighter figure for the charges made so far. Relation: " + (b.relation || "–") + "."}));
  }

  // -- the burn-down chart (inline SVG)

  var SCALES = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];

  function chartBlock(name, s) {
    var burn = s.burn_down || [];
    var block = el("figure", {class: "chart"});
    var zoom = state.zoom[name] || "auto";
    var heading = el("figcaption", null, el("h3", {text: "Budget burn-down"}));
    append(block, heading);
    if (burn.length === 0) {
      append(block, el("p", {class: "empty", text: "No charges yet: the whole budget is left."}));
      return block;
    }
    var maxUsed = Math.max.apply(null, burn.map(function (p) { return p.fraction_used; }));
    var top = 1;
    if (zoom === "auto") {
      top = SCALES.filter(function (x) { return x >= maxUsed; })[0] || 1;
    }
    if (maxUsed > 1) top = maxUsed;
    var toggle = el("button", {type: "button", class: "secondary small",
      "aria-pressed": zoom === "whole" ? "true" : "false",
      text: zoom === "whole" ? "Zoom to the spend" : "Show the whole budget",
      onclick: function () { state.zoom[name] = zoom === "whole" ? "auto" : "whole"; refresh(); }});
    if (top < 1 || zoom === "whole") append(heading, toggle);

    var W = 720, H = 280, m = {l: 64, r: 20, t: 22, b: 48};
    var n = burn.length;
    var xs = function (i) { return m.l + (n === 0 ? 0 : i / n) * (W - m.l - m.r); };
    var ys = function (f) { return H - m.b - (f / top) * (H - m.t - m.b); };
    var label = pct(s.fraction_used) + " of the budget used after " + n + (n === 1 ? " charge" : " charges");
    var chart = svg("svg", {viewBox: "0 0 " + W + " " + H, class: "burn", role: "img", "aria-label": "Budget burn-down: " + label},
      svg("title", {text: "Budget burn-down: " + label}));
    // grid and y labels
    for (var k = 0; k <= 4; k++) {
      var f = top * k / 4, y = ys(f);
      append(chart, svg("line", {x1: m.l, x2: W - m.r, y1: y, y2: y, class: "grid"}));
      append(chart, svg("text", {x: m.l - 8, y: y + 4, class: "tick y", "text-anchor": "end", text: pct(f)}));
    }
    // axes
    append(chart, svg("line", {x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: "axis"}));
    append(chart, svg("line", {x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: "axis"}));
    // budget line
    if (top >= 1) {
      append(chart, svg("line", {x1: m.l, x2: W - m.r, y1: ys(1), y2: ys(1), class: "budget-line"}));
      append(chart, svg("text", {x: W - m.r - 4, y: ys(1) - 6, class: "budget-label", "text-anchor": "end",
                                 text: "budget: ε = " + num(s.budget && s.budget.epsilon) + " at δ = " + num(s.budget && s.budget.delta)}));
    } else {
      append(chart, svg("text", {x: W - m.r - 4, y: m.t - 8, class: "budget-label", "text-anchor": "end",
                                 text: "↑ budget (100%) is above this scale"}));
    }
    // the step line of fraction used, from 0 before the first charge
    var d = "M " + xs(0) + " " + ys(0);
    burn.forEach(function (p, i) { d += " H " + xs(i + 1) + " V " + ys(p.fraction_used); });
    d += " H " + (W - m.r);
    append(chart, svg("path", {d: d, class: "used-line"}));
    // points, with a tooltip each
    burn.forEach(function (p, i) {
      append(chart, svg("circle", {cx: xs(i + 1), cy: ys(p.fraction_used), r: n > 60 ? 2 : 4, class: "point",
                                   "data-sequence": p.sequence},
        svg("title", {text: "#" + p.sequence + " " + (p.timestamp || "") + " — " + (p.actor || "?") +
                            (p.generator ? " (" + p.generator + ")" : "") + ": " + pct(p.fraction_used) +
                            " used, ε (filter) " + num(p.epsilon_filter, 3)})));
    });
    // x ticks: a handful of charges, by ledger entry number
    var step = Math.max(1, Math.ceil(n / 8));
    for (var i = 0; i < n; i += step) {
      append(chart, svg("text", {x: xs(i + 1), y: H - m.b + 16, class: "tick x", "text-anchor": "middle",
                                 text: "#" + burn[i].sequence}));
    }
    append(chart, svg("text", {x: m.l + (W - m.l - m.r) / 2, y: H - 8, class: "axis-title", "text-anchor": "middle",
                               text: "charges, in ledger order (entry number)"}));
    append(chart, svg("text", {x: 14, y: m.t + (H - m.t - m.b) / 2, class: "axis-title", "text-anchor": "middle",
                               transform: "rotate(-90 14 " + (m.t + (H - m.t - m.b) / 2) + ")",
                               text: "budget used"}));
    append(block, chart);
    return block;
  }

  // -- spend tables

  function spendTable(title, column, rows, shares, kind) {
    var wrap = el("section", {class: "spend", "aria-label": title});
    append(wrap, el("h3", {text: title}));
    if (!rows || rows.length === 0) {
      append(wrap, el("p", {class: "empty", text: "No charges yet."}));
      return wrap;
    }
    var totalShare = 0;
    rows.forEach(function (r) { totalShare += shares[r.name] || 0; });
    var table = el("table", {class: "spend-table", "data-kind": kind},
      el("thead", null, el("tr", null,
        el("th", {scope: "col", text: column}),
        el("th", {scope: "col", class: "num", text: "Charges"}),
        el("th", {scope: "col", class: "num", text: "ε alone"}),
        el("th", {scope: "col", class: "num", text: "Of the budget"}),
        el("th", {scope: "col", class: "bar-col", text: "Share of the spend"}))));
    var body = el("tbody");
    rows.slice().sort(function (a, b) { return (shares[b.name] || 0) - (shares[a.name] || 0); }).forEach(function (r) {
      var share = shares[r.name];
      var rel = totalShare > 0 && typeof share === "number" ? share / totalShare : 0;
      var fill = el("span", {class: "bar-fill"});
      fill.style.width = Math.max(0, Math.min(100, rel * 100)) + "%";
      append(body, el("tr", null,
        el("th", {scope: "row", class: "name", text: r.name}),
        el("td", {class: "num", text: String(r.charges)}),
        el("td", {class: "num", text: num(r.epsilon, 3)}),
        el("td", {class: "num", text: typeof share === "number" ? pct(share) : "–"}),
        el("td", {class: "bar-col"},
          el("span", {class: "bar", role: "img", "aria-label": pct(rel) + " of the spend"}, fill),
          el("span", {class: "bar-text", text: pct(rel)}))));
    });
    append(table, body);
    append(wrap, table);
    append(wrap, el("p", {class: "note", text: "ε alone: the full-curve ε of these charges by themselves, at the " +
                                                "ledger's δ. Shares count the filter's cost."}));
    return wrap;
  }

  // -- entries

  function entriesBlock(r) {
    var name = r.dataset.name;
    var wrap = el("section", {class: "entries", "aria-label": "Ledger entries"});
    append(wrap, el("h3", {text: "Ledger entries and receipts"}));
    if (!r.entries.ok) {
      append(wrap, el("p", {class: "error-box", role: "alert", text: "The entries could not be read: " + r.entries.error.message}));
      return wrap;
    }
    var entries = r.entries.value.entries.slice().reverse();   // newest first
    if (entries.length === 0) {
      append(wrap, el("p", {class: "empty", text: "No entries yet."}));
      return wrap;
    }
    var bad = {};
    if (r.verify.ok) (r.verify.value.problems || []).forEach(function (p) { if (p.sequence !== null) bad[p.sequence] = true; });
    var open = state.expanded[name] || (state.expanded[name] = {});
    var table = el("table", {class: "entry-table"},
      el("caption", {text: "Entries " + (r.window.lo + 1) + "–" + r.window.hi + " of " + r.total + ", newest first. " +
                           "Open an entry to read its full signed record (its receipt)."}),
      el("thead", null, el("tr", null,
        el("th", {scope: "col", text: "#"}), el("th", {scope: "col", text: "Time (UTC)"}),
        el("th", {scope: "col", text: "Kind"}), el("th", {scope: "col", text: "Actor"}),
        el("th", {scope: "col", text: "Generator"}), el("th", {scope: "col", text: "Purpose"}),
        el("th", {scope: "col", class: "num", text: "ε after (filter)"}))));
    var body = el("tbody");
    entries.forEach(function (e) {
      var seq = e.sequence;
      var detailId = "entry-" + cssId(name) + "-" + seq;
      var isOpen = !!open[seq];
      var button = el("button", {type: "button", class: "expand", "aria-expanded": isOpen ? "true" : "false",
                                 "aria-controls": detailId, title: "Show the full entry"},
        el("span", {class: "chevron", "aria-hidden": "true", text: isOpen ? "▾ " : "▸ "}), "#" + seq);
      var detail = el("tr", {class: "detail", id: detailId},
        el("td", {colspan: 7}, el("pre", {class: "entry-json", tabindex: 0, text: JSON.stringify(e, null, 2)})));
      detail.hidden = !isOpen;
      var toggle = function () {
        var now = detail.hidden;
        detail.hidden = !now;
        button.setAttribute("aria-expanded", now ? "true" : "false");
        button.firstChild.textContent = now ? "▾ " : "▸ ";
        if (now) open[seq] = true; else delete open[seq];
      };
      button.addEventListener("click", function (ev) { ev.stopPropagation(); toggle(); });
      var row = el("tr", {class: "entry kind-" + String(e.kind).replace(/[^a-z]/g, "") + (bad[seq] ? " bad" : ""),
                          "data-sequence": seq},
        el("td", {class: "seq"}, button, bad[seq] ? el("span", {class: "bad-mark", text: " ⚠ does not verify"}) : null),
        el("td", {class: "time", text: e.timestamp || ""}),
        el("td", {class: "kind", text: e.kind || ""}),
        el("td", {class: "actor", text: e.actor || ""}),
        el("td", {class: "generator", text: e.generator || ""}),
        el("td", {class: "purpose", text: e.purpose || ""}),
        el("td", {class: "num eps", text: num(e.epsilon_filter, 4)}));
      row.addEventListener("click", function (ev) {
        if (window.getSelection && String(window.getSelection()).length > 0) return;  // selecting text, not opening
        toggle();
      });
      append(body, [row, detail]);
    });
    append(table, body);
    append(wrap, el("div", {class: "table-scroll"}, table));
    if (r.pages > 1) {
      var go = function (p) { return function () { state.pages[name] = p; refresh(); }; };
      append(wrap, el("nav", {class: "pager", "aria-label": "Pages of entries"},
        el("button", {type: "button", class: "secondary small", disabled: r.page === 0, onclick: go(0), text: "Newest"}),
        el("button", {type: "button", class: "secondary small", disabled: r.page === 0, onclick: go(r.page - 1), text: "Newer"}),
        el("span", {class: "page-of", text: "page " + (r.page + 1) + " of " + r.pages}),
        el("button", {type: "button", class: "secondary small", disabled: r.page >= r.pages - 1, onclick: go(r.page + 1), text: "Older"}),
        el("button", {type: "button", class: "secondary small", disabled: r.page >= r.pages - 1, onclick: go(r.pages - 1), text: "Oldest"})));
    }
    return wrap;
  }

  function cssId(s) { return String(s).replace(/[^A-Za-z0-9_-]/g, "_"); }

  // ------------------------------------------------------------------ start

  function start() {
    $("refresh").addEventListener("click", function () { refresh(); });
    $("logout").addEventListener("click", logout);
    // A login link opened in a tab that already shows the dashboard changes only the fragment.
    window.addEventListener("hashchange", function () {
      if (window.location.hash.indexOf("#login=") === 0) begin();
    });
    begin();
  }

  function begin() {
    loginFromFragment().then(function (message) {
      state.loginMessage = message;
      return refresh();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
