"""What the marimo runbooks in ``runbooks/`` call: a small runtime, the context, one module per notebook, reports.

The runbooks walk the guides' procedures (set up, monitor, incident, rotate a secret, roll back).
They stay thin glue: every query and decision lives here, typed and tested; a notebook cell calls
one helper for the data and one for the view.

* :mod:`.runtime` — parameters, the apply gate, confirmation: the only module with marimo vs
  Jupyter vs script special cases;
* :mod:`.context` — where a runbook works (database, manifest, environment); reads in READ ONLY
  transactions, the scrubber;
* :mod:`.setup`, :mod:`.monitor`, :mod:`.incident`, :mod:`.rotate`, :mod:`.rollback` — one per
  notebook, with :mod:`.secret_store` and :mod:`.job_checks` shared by setup and rotate;
* :mod:`.report` — offline HTML reports; :mod:`.golden` — Jupyter renditions (nbval goldens);
  ``python -m cronkit.runbooks report|export-ipynb|check-golden``.

Rules every runbook keeps: **nothing changes unless confirmed** (a state-changing step runs only
when its ``mo.ui.run_button`` was pressed or ``apply`` is true); **secrets never appear** (values
come from a masked input or a named variable, go straight to the backend, and are shown only as
:func:`cronkit.redact.mask`).
"""
