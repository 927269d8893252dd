"""The one ending of the side-by-side scripts: the result table on stdout, and the same
markdown in --markdown FILE when given (docs/benchmarks.md quotes those files)."""


def publish(text, markdown=None):
    print(text)
    if markdown:
        with open(markdown, "w") as f:
            f.write(text + "\n")
