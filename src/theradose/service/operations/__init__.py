"""Use cases of the traceability service, shared by the JSON API and the browser pages.

One module per area (patients, referrals, prescriptions, batches, dispensing, administration, labs,
calibrators, cameras, signatures, audit, dosimetry, users, ...). Each use case is a function
``operation(session, principal, input, *, <settings it needs>)``: the caller opens the transaction
(``db.write()`` or ``db.read()``) and passes the authenticated :class:`~theradose.service.auth.Principal`
and a validated input model; the function applies every rule, writes the audit entries and returns a
typed output model. Refusals are :class:`~theradose.service.errors.ApiError` (with the field concerned)
or :class:`~theradose.errors.TheradoseError` from the domain packages; nothing is written when one is
raised, because the caller's transaction is rolled back.
"""
