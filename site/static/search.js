/* waikan client-side search: no server, no CDN, works from file:// too.
 * Tokenization must match waikan/render/search.py: Han bigrams and folded words. */
(function () {
  "use strict";
  var me = document.currentScript;
  var root = me.getAttribute("data-root") || "";
  var texts = {
    results: me.getAttribute("data-results") || "{n}",
    none: me.getAttribute("data-none") || "",
    busy: me.getAttribute("data-busy") || ""
  };
  var waiting = {};
  var loaded = {};
  window.waikanSearch = {
    load: function (name, data) {
      var cb = waiting[name];
      delete waiting[name];
      if (cb) cb(data);
    }
  };

  function load(name) {
    if (!loaded[name]) {
      loaded[name] = new Promise(function (resolve, reject) {
        waiting[name] = resolve;
        var s = document.createElement("script");
        s.src = root + "search/" + name + ".js";
        s.async = true;
        s.addEventListener("error", function () {
          delete waiting[name];
          reject(new Error("cannot load " + name));
        });
        document.head.appendChild(s);
      });
    }
    return loaded[name];
  }

  var TOKEN = /[\u3400-\u9fff\uf900-\ufaff]+|[0-9a-z]+/g;

  function terms(text) {
    var folded = text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
    var out = [];
    var seen = {};
    var m;
    function add(t) { if (!seen[t]) { seen[t] = true; out.push(t); } }
    TOKEN.lastIndex = 0;
    while ((m = TOKEN.exec(folded)) !== null) {
      var t = m[0];
      if (t.charCodeAt(0) < 0x3400 || t.length === 1) {
        add(t);
      } else {
        for (var i = 0; i + 1 < t.length; i++) add(t.slice(i, i + 2));
      }
    }
    return out;
  }

  function shardOf(term, shards) {
    var bytes = new TextEncoder().encode(term);
    var h = 0x811c9dc5;
    for (var i = 0; i < bytes.length; i++) {
      h ^= bytes[i];
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h % shards;
  }

  function searchSegment(seg, words) {
    var name = seg[0], shards = seg[1];
    return Promise.all(words.map(function (w) {
      return load(name + "/" + shardOf(w, shards)).then(function (table) {
        return Object.prototype.hasOwnProperty.call(table, w) ? table[w] : [];
      });
    })).then(function (lists) {
      var hits = lists.reduce(function (acc, list) {
        var set = {};
        list.forEach(function (n) { set[n] = true; });
        return acc.filter(function (n) { return set[n]; });
      }, lists.length ? lists[0].slice() : []);
      if (!hits.length) return [];
      return load(name + "/docs").then(function (docs) {
        return hits.sort(function (a, b) { return b - a; }).map(function (n) { return docs[n]; });
      });
    });
  }

  function show(docs, status, list) {
    list.textContent = "";
    docs.slice(0, 100).forEach(function (d) {
      var li = document.createElement("li");
      li.className = "card";
      var h = document.createElement("h2");
      var a = document.createElement("a");
      a.href = root + d[0];
      a.textContent = d[1];
      h.appendChild(a);
      li.appendChild(h);
      if (d[2]) {
        var meta = document.createElement("p");
        meta.className = "meta";
        meta.textContent = d[2];
        li.appendChild(meta);
      }
      var p = document.createElement("p");
      p.className = "snippet";
      p.textContent = d[3];
      li.appendChild(p);
      list.appendChild(li);
    });
    status.textContent = docs.length ? texts.results.replace("{n}", String(docs.length)) : texts.none;
  }

  function run(query) {
    var status = document.getElementById("search-status");
    var list = document.getElementById("search-results");
    var words = terms(query);
    list.textContent = "";
    if (!words.length) { status.textContent = ""; return Promise.resolve([]); }
    status.textContent = texts.busy;
    return load("index").then(function (index) {
      return Promise.all(index.segments.map(function (seg) { return searchSegment(seg, words); }));
    }).then(function (perSegment) {
      var docs = [].concat.apply([], perSegment);
      show(docs, status, list);
      document.documentElement.setAttribute("data-search-done", query);
      return docs;
    }, function (err) {
      status.textContent = String(err && err.message || err);
    });
  }

  window.waikanSearch.run = run;
  var input = document.getElementById("q");
  var q = new URLSearchParams(window.location.search).get("q") || "";
  if (input) input.value = q;
  if (q) run(q);
})();
