"""MLflow's run-search language (``filter_string`` and ``order_by``) evaluated on a recorder table.

:mod:`tracklite.search.filter` parses filters and masks frames; :mod:`tracklite.search.order`
parses ``order_by`` clauses and sorts frames. Nothing is imported here so that importing the
package stays cheap.
"""
