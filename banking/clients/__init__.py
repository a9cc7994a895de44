"""HTTP clients of the banks' OpenBanking API (SPEC.md). They never import models or the ORM."""
