"""Coverage-guided fuzzing of the upload decode path (atheris, libFuzzer).

    make fuzz FUZZ_SECONDS=60        # python -m fuzz.run --seconds 60

fuzz.pipeline runs one input as a request would take it, fuzz.seeds makes the starting
corpus, fuzz.decode is the libFuzzer entry point and fuzz.run the bounded run with its
limits and summary (CI).
"""
