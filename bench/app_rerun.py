"""How long does the app take to rerun, for a new network and for a display option alone?

    .venv/bin/python bench/app_rerun.py [--repeat 5]

Side by side in one run, with Streamlit's AppTest (the script as the server runs it, in this
process; the browser's drawing is not included):
  preset switch   the sidebar's preset from resnet50 to resnet152 on the Build page: cold (every
                  st.cache_data / st.cache_resource entry cleared first, as on a fresh server)
                  and warm (resnet152 seen before in this server).
                  Target <= 1.5 s.
  display only    the Activations page (resnet50, the sample photo, random weights) with its
                  colour scale switched between per channel and per layer: no new network and
                  no new pass, only new pictures; and the Architecture page's diagram theme.
                  Target <= 0.3 s.
AppTest compiles every page again on each run (a new ScriptCache each time, with Streamlit's
"magic" rewrite of the syntax tree: about 0.3 s for activations.py here), where the server
compiles each page once; this script hands AppTest one shared cache, as the server has.
Medians of --repeat runs, each printed against its target as a ratio (<= 1 meets it).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import streamlit as st
import streamlit.testing.v1.app_test as app_test_module
import streamlit.testing.v1.local_script_runner as runner_module
from streamlit.runtime.scriptrunner.script_cache import ScriptCache
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).parent.parent / "app.py")
THEMES = ("light", "projector")
PRESET_TARGET_S = 1.5
DISPLAY_TARGET_S = 0.3


def _app(model: str, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params["model"] = model
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _timed(action: Callable[[], AppTest]) -> float:
    start = time.perf_counter()
    at = action()
    elapsed = time.perf_counter() - start
    assert not at.exception, at.exception
    return elapsed


def preset_switch(cold: bool) -> float:
    at = _app("resnet50")
    if cold:
        st.cache_data.clear()
        st.cache_resource.clear()
    return _timed(lambda: at.sidebar.selectbox[0].select("resnet152").run())


def flips(page: str, kind: str, key: str, values: tuple[str, str], repeat: int) -> list[float]:
    """Rerun times of switching the widget `key` (of AppTest's `kind`) back and forth."""
    at = _app("resnet50", page)

    def flip(value: str) -> AppTest:
        return at.get(kind)[[w.key for w in at.get(kind)].index(key)].set_value(value).run()

    flip(values[1]), flip(values[0])  # each picture is drawn once, untimed
    return [_timed(lambda i=index: flip(values[(i + 1) % 2])) for index in range(repeat)]


def report(what: str, times: list[float], target: float) -> None:
    median = statistics.median(times)
    print(
        f"{what:<48} median {median:6.3f} s  (min {min(times):.3f}, n={len(times)})  "
        f"ratio to target {median / target:.2f}  (target <= {target} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the app logs every model it builds
    shared = ScriptCache()
    app_test_module.ScriptCache = lambda: shared  # type: ignore[assignment,misc]
    runner_module.ScriptCache = lambda: shared  # type: ignore[assignment,misc]

    cold = [preset_switch(cold=True) for _ in range(args.repeat)]
    warm = [preset_switch(cold=False) for _ in range(args.repeat)]
    colours = flips(
        "app_pages/activations.py", "button_group", "act_norm", ("channel", "layer"), args.repeat
    )
    themes = flips("app_pages/architecture.py", "selectbox", "arch_theme", THEMES, args.repeat)

    report("preset resnet50 -> resnet152, cold caches", cold, PRESET_TARGET_S)
    report("preset resnet50 -> resnet152, warm caches", warm, PRESET_TARGET_S)
    report("display only: Activations colour scale", colours, DISPLAY_TARGET_S)
    report("display only: Architecture diagram theme", themes, DISPLAY_TARGET_S)


if __name__ == "__main__":
    main()
