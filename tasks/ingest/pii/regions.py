"""Where national phone numbers are recognised by default (imports nothing: the config uses it)."""

# EU and EEA members, the UK and Switzerland: the regions whose national numbers are recognised
# without a country code. International numbers (`+` or `00`) are recognised for every country.
EUROPE = (
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "GB", "CH",
)
