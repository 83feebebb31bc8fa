"""The ground floor shared by training, service, clients and load tests: python -c "import core"

The model contract, the IDX reader and data-source resolution, file digests and a
PNG writer. Standard library and numpy only, and nothing of ours: every other
package may import this one, and this one imports none of them.
"""
