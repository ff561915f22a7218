"""One module per view of the browser UI; :mod:`theradose.service.web.routes` maps URLs to them."""
