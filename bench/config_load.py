"""Config layer costs at scale: load/validate, hash, dump, worker encoding, one Admin change.

    .venv/bin/python bench/config_load.py [N]     # N services, each with one route (default 5000)
"""
from __future__ import annotations

import logging
import sys
import time

from fastgw.config import declarative, model
from fastgw.config.store import ConfigStore


def main(n: int) -> None:
    doc = {"_format_version": "3.0", "services": [
        {"name": f"s{i}", "url": f"http://h{i}.internal:8080/p",
         "routes": [{"name": f"r{i}", "paths": [f"/p{i}"], "methods": ["GET"]}]}
        for i in range(n)]}
    t0 = time.perf_counter()
    c = declarative.load_dict(doc)
    t1 = time.perf_counter()
    model.config_hash(c)
    t2 = time.perf_counter()
    declarative.dump(c)
    t3 = time.perf_counter()
    model.decode_config(model.encode_config(c))
    t4 = time.perf_counter()
    logging.disable(logging.WARNING)
    st = ConfigStore(c, lambda _: None)
    t5 = time.perf_counter()
    st.create("services", {"name": "extra", "host": "h"})
    t6 = time.perf_counter()
    print(f"{2 * n} entities: load_dict {t1 - t0:.3f}s  config_hash {t2 - t1:.3f}s  "
          f"dump {t3 - t2:.3f}s  msgpack enc+dec {t4 - t3:.3f}s  admin create {t6 - t5:.3f}s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
