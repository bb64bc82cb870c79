"""A demo that runs on a fresh machine with no input: `dpsynth demo` or `run_demo()`.

    from dpsynth.demo import demo_table, demo_schema, run_demo
    result = run_demo()            # a temporary workspace; prints where everything is
"""

from .data import demo_table
from .schema import demo_schema
from .workspace import DemoResult, default_generator, run_demo, setup_workspace, write_job

__all__ = ["DemoResult", "default_generator", "demo_schema", "demo_table", "run_demo", "setup_workspace",
           "write_job"]
