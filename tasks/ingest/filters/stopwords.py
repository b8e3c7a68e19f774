"""The most frequent function words of EU languages, for the Gopher "has stop words" check.

Gopher requires at least two of a handful of English function words; for a multilingual corpus
the check uses the union of small per-language lists, so real prose in any of these languages
passes and word salad in none of them does.
"""

STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the be to of and that have with is are was it in for on this".split()),
    "de": frozenset("der die das und ist nicht sie ich es zu den mit von dem ein eine auf".split()),
    "fr": frozenset("le la les et est de des un une que qui dans pour pas sur au du".split()),
    "es": frozenset("el la los las y es de que en un una por con para no se del".split()),
    "it": frozenset("il la le e è di che un una per non con del della in sono".split()),
    "nl": frozenset("de het een en is van dat niet op te zijn met voor die ik".split()),
    "pt": frozenset("o a os as e é de que um uma para com não em do da".split()),
    "pl": frozenset("i w na nie się z że to jest do jak o co".split()),
    "sv": frozenset("och att det är som en på av för med till den inte har".split()),
    "da": frozenset("og at det er som en på af for med til den ikke har".split()),
    "fi": frozenset("ja on ei se että hän oli ovat kuin mutta tai myös".split()),
    "cs": frozenset("a je se na že to v ve s z do jako ale".split()),
    "ro": frozenset("și este de la în nu cu pe că un o care".split()),
    "hu": frozenset("a az és hogy nem is egy van meg de csak".split()),
    "el": frozenset("και το η ο να είναι του της με σε για δεν".split()),
}

ALL_STOP_WORDS: frozenset[str] = frozenset().union(*STOP_WORDS.values())
