# Pages one runs/search to its end with the page tokens the server gives (each page seeks past
# the last run's sort key) and with offset-only tokens (what pages did before 2026-12-05, and
# what a token of an older server still does), alternating three times, and checks that both
# find the same runs in the same order. Needs a store filled by `cairn-bench fill` (100
# experiments):  python3 bench/pages_ab.py http://127.0.0.1:5000
import base64, json, sys, time, urllib.request
url, exps = sys.argv[1], [str(i) for i in range(1, 101)]
def post(body):
    req = urllib.request.Request(url + "/api/2.0/mlflow/runs/search", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
def page_all(body, keyset):
    ids, token, pages, times = [], None, 0, []
    while True:
        b = dict(body, max_results=100)
        if token: b["page_token"] = token
        t = time.perf_counter(); r = post(b); times.append(time.perf_counter() - t)
        ids += [x["info"]["run_id"] for x in r.get("runs", [])]; pages += 1
        token = r.get("next_page_token")
        if not token: return ids, pages, times
        if not keyset:
            token = base64.b64encode(json.dumps({"offset": len(ids)}).encode()).decode()
queries = {
    "filtered, ordered by metrics.acc": {"experiment_ids": exps, "filter": "params.p00 = 'adam' AND metrics.acc > 0.9", "order_by": ["metrics.acc DESC"]},
    "unfiltered, default order, one experiment": {"experiment_ids": ["7"]},
}
for name, q in queries.items():
    res = {True: [], False: []}
    for rep in range(3):
        for keyset in (False, True):
            t = time.perf_counter(); ids, pages, times = page_all(q, keyset); total = time.perf_counter() - t
            res[keyset].append((total, times[-1], ids, pages))
    assert res[True][0][2] == res[False][0][2], name
    for keyset in (False, True):
        tot = sorted(r[0] for r in res[keyset]); last = sorted(r[1] for r in res[keyset])
        print(f"{name}: {'keyset' if keyset else 'offset'}: {res[keyset][0][3]} pages, {len(res[keyset][0][2])} runs, all pages min/median {tot[0]*1e3:.0f}/{tot[1]*1e3:.0f} ms, last page min/median {last[0]*1e3:.1f}/{last[1]*1e3:.1f} ms")
