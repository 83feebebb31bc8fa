"""The ground floor shared by training, service, clients and load tests: python -c "import core"

The model contract, the IDX reader and data-source resolution, file digests, a PNG
writer and what a complete model-store version is (with an atomic file write).
Standard library and numpy only, and nothing of ours: every other
package may import this one, and this one imports none of them.
"""
