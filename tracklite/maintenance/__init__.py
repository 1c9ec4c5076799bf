"""Store maintenance: verification and repair (``check``), filesystem checks (``doctor``)."""
