"""Mutation testing of the command line: bad models, data files, values and paths, generated deterministically.

``seeds`` builds the small valid inputs, ``families`` mutates them into cases, ``runner``
runs each case in a forked process under an address-space limit and judges the outcome.
``python tests/mutations/runner.py`` runs every case and prints the counts per class.
"""
