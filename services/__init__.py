"""The QualityCity services. A service imports `shared`; services never import each other."""
