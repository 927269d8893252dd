"""`occystrap sync SPEC.yaml`: mirror many repositories, tags chosen by rule, in one run.

spec.py reads and checks the YAML (sync.model.Entry), semver.py is the version
constraint grammar, resolve.py turns entries into jobs (one image each), run.py copies
them (-J images at once) and reports.
"""
