"""NDJSON-file machinery shared by the file backends (``json`` and ``rotation``).

One implementation of everything that touches log files, one idea per module:

- :mod:`~papyra.filelog.fsio` — create dirs 0700 / files 0600, ``write_all``, ``fsync_dir``,
  one translation of ``OSError`` into typed errors that name the path.
- :mod:`~papyra.filelog.framing` — lines forwards in big blocks and backwards from the end,
  the fast line classifier, the streaming :class:`~papyra.filelog.framing.FileScanner`.
- :mod:`~papyra.filelog.locking` — the ``flock`` on ``<log>.lock`` with a timeout.
- :mod:`~papyra.filelog.writer` — group commit on a writer thread: fsync policies, torn-tail
  handling, reopen after replacement, seq learned from other processes' appends.
- :mod:`~papyra.filelog.rewrite` — crash-atomic rewrites that copy without the lock and take it
  only for the switch-over.
- :mod:`~papyra.filelog.repair` — carries out recovery plans (truncate, newline, drop, gap,
  quarantine, delete, move), idempotent and convergent.
- :mod:`~papyra.filelog.compaction` — streaming physical retention with a leading gap record.
- :mod:`~papyra.filelog.migrate` — legacy 0.3.0 files (and rotating sets) to format v1.

How a segmented store uses it: each segment is a file handled exactly like the JSON backend's
single file (scan with ``FileScanner(last_file=...)``, repair with ``repair.execute_plan``,
rewrite with ``Rewrite``); the active segment is an ``AppendFile`` behind a
``GroupCommitWriter``, and the store's own ``BatchTarget`` rolls segments inside
``write_batch``.
"""
