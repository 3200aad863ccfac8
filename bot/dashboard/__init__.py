"""Organisers' web dashboard (智慧社区 view): figures, the report ledger, exports — served by aiohttp."""
