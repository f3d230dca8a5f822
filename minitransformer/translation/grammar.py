"""The built-in corpus: English -> German sentence pairs generated from a small grammar.

Why a generated corpus? The demo must run offline on a fresh machine, and the task
must be one a tiny model can learn in minutes, yet hard in the way translation is
hard: German moves words far from where English has them.

* verb second: "Today the dog sees the ball." -> "Heute sieht der Hund den Ball."
* verb first in questions: "Does the dog see the ball?" -> "Sieht der Hund den Ball?"
* verb last in subordinate clauses: "..., weil der Hund den Ball sieht."
* separable verbs split in two: "The woman calls the man." -> "Die Frau ruft den Mann an."

and German inflects what English leaves alone: articles and adjective endings follow
gender, case and number ("der große Hund", "einen großen Hund", "mit dem kleinen Kind"),
verbs agree with their subject ("ich sehe", "du siehst", "er sieht").

How it works, bottom up:

1. A bilingual lexicon (:data:`NOUNS`, :data:`VERBS`, :data:`ADJECTIVES`,
   :data:`PREPOSITIONS`, names, pronouns, time adverbs). Each word carries what German
   grammar needs (a noun's gender and plural, a verb's four present-tense forms) and
   *tags* that keep sentences sensible (only people read; one eats food; "kin" marks
   the people a possessive fits: "my sister", not "my woman").
2. Phrase objects (:class:`NounPhrase`, :class:`PrepPhrase`, :class:`Clause`) that
   render themselves in both languages: a noun phrase in German needs its case.
3. Sentence functions (:func:`render`, :func:`render_complex`) that put clauses in the
   word order of each construction and return the ``(english, german)`` pair.
4. A seeded random generator (:func:`generate_pairs`) choosing words and constructions,
   and :func:`load_corpus`, which makes disjoint train/valid/test splits.

Sentences are ordinary text ("Der große Hund sieht einen kleinen Ball."): capitalised,
punctuation attached. :func:`minitransformer.translation.vocab.tokenize` splits and
lower-cases them for the models.

Tests and readers can build any sentence by hand from English words::

    >>> render(Clause(phrase("the big dog"), verb("see"), object=phrase("a small ball")))
    ('The big dog sees a small ball.', 'Der große Hund sieht einen kleinen Ball.')
"""
import functools
import random
from dataclasses import dataclass

from .splits import split_pairs

#: Sentences (both sides, counted in tokens with punctuation) outside these bounds are
#: redrawn, so that a tiny model sees short sentences.
MIN_TOKENS, MAX_TOKENS = 4, 14

CASES = ("nom", "acc", "dat")
PERSONS = ("1sg", "2sg", "3sg", "pl")  # index of a verb's German forms


# ================================================================ German morphology
# Keys: case, then "m", "f", "n" (singular by gender) or "pl" (plural, all genders).
DEFINITE_ARTICLE = {
    "nom": {"m": "der", "f": "die", "n": "das", "pl": "die"},
    "acc": {"m": "den", "f": "die", "n": "das", "pl": "die"},
    "dat": {"m": "dem", "f": "der", "n": "dem", "pl": "den"},
}
# "ein" and the possessives ("mein", "unser", ...) share these endings.
EIN_WORD_ENDING = {
    "nom": {"m": "", "f": "e", "n": "", "pl": "e"},
    "acc": {"m": "en", "f": "e", "n": "", "pl": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "pl": "en"},
}
# Adjective endings. The article decides which table applies: after "der/die/das"
# the article already shows gender and case, so the adjective gets the weak endings;
# after "ein/mein" (which show less) the mixed endings; with no article at all the
# adjective must show everything itself: strong endings.
WEAK_ENDING = {
    "nom": {"m": "e", "f": "e", "n": "e", "pl": "en"},
    "acc": {"m": "en", "f": "e", "n": "e", "pl": "en"},
    "dat": {"m": "en", "f": "en", "n": "en", "pl": "en"},
}
MIXED_ENDING = {
    "nom": {"m": "er", "f": "e", "n": "es", "pl": "en"},
    "acc": {"m": "en", "f": "e", "n": "es", "pl": "en"},
    "dat": {"m": "en", "f": "en", "n": "en", "pl": "en"},
}
STRONG_ENDING = {
    "nom": {"m": "er", "f": "e", "n": "es", "pl": "e"},
    "acc": {"m": "en", "f": "e", "n": "es", "pl": "e"},
    "dat": {"m": "em", "f": "er", "n": "em", "pl": "en"},
}
# Preposition + definite article contractions that standard written German uses.
CONTRACTIONS = {("in", "dem"): "im", ("in", "das"): "ins", ("zu", "dem"): "zum",
                ("zu", "der"): "zur", ("von", "dem"): "vom"}


# ================================================================ the lexicon
def _tags(text):
    return frozenset(text.split(",")) if text and text != "-" else frozenset()


def _rows(table):
    """The rows of a lexicon table: lines split at '|', blank lines and comments dropped."""
    for line in table.strip().splitlines():
        line = line.split("#")[0].strip()
        if line:
            yield [field.strip() for field in line.split("|")]


@dataclass(frozen=True)
class Noun:
    """A noun in both languages. ``gender`` is "m", "f" or "n"; ``weak`` marks the
    masculine nouns that add -n outside the nominative singular (der Junge, den Jungen)."""
    en: str
    en_plural: str
    de: str
    de_plural: str
    gender: str
    tags: frozenset
    weak: bool = False

    def german(self, case, plural):
        """The German form in ``case`` ("nom", "acc", "dat")."""
        if plural:
            # Dative plural adds -n, unless the plural already ends in -n or -s.
            if case == "dat" and not self.de_plural.endswith(("n", "s")):
                return self.de_plural + "n"
            return self.de_plural
        if self.weak and case != "nom":
            return self.de + "n"
        return self.de


NOUNS = [Noun(en, en_pl, de, de_pl, gender, _tags(tags) - {"weak"}, "weak" in _tags(tags))
         for en, en_pl, de, de_pl, gender, tags in _rows("""
# english  | plural     | German   | plural     | gender | tags
man        | men        | Mann     | Männer     | m | person
woman      | women      | Frau     | Frauen     | f | person
child      | children   | Kind     | Kinder     | n | person,kin
boy        | boys       | Junge    | Jungen     | m | person,weak
girl       | girls      | Mädchen  | Mädchen    | n | person
teacher    | teachers   | Lehrer   | Lehrer     | m | person,kin
friend     | friends    | Freund   | Freunde    | m | person,kin
brother    | brothers   | Bruder   | Brüder     | m | person,kin
sister     | sisters    | Schwester| Schwestern | f | person,kin
father     | fathers    | Vater    | Väter      | m | person,kin
mother     | mothers    | Mutter   | Mütter     | f | person,kin
doctor     | doctors    | Arzt     | Ärzte      | m | person,kin
son        | sons       | Sohn     | Söhne      | m | person,kin
daughter   | daughters  | Tochter  | Töchter    | f | person,kin
cook       | cooks      | Koch     | Köche      | m | person
dog        | dogs       | Hund     | Hunde      | m | animal
cat        | cats       | Katze    | Katzen     | f | animal
bird       | birds      | Vogel    | Vögel      | m | animal,sound
horse      | horses     | Pferd    | Pferde     | n | animal
mouse      | mice       | Maus     | Mäuse      | f | animal
lion       | lions      | Löwe     | Löwen      | m | animal,weak
cow        | cows       | Kuh      | Kühe       | f | animal
ball       | balls      | Ball     | Bälle      | m | small
key        | keys       | Schlüssel| Schlüssel  | m | small
hat        | hats       | Hut      | Hüte       | m | small
bag        | bags       | Tasche   | Taschen    | f | small,openable
clock      | clocks     | Uhr      | Uhren      | f | small
bottle     | bottles    | Flasche  | Flaschen   | f | small,openable
cup        | cups       | Tasse    | Tassen     | f | small
book       | books      | Buch     | Bücher     | n | small,text,openable
letter     | letters    | Brief    | Briefe     | m | small,text,openable
newspaper  | newspapers | Zeitung  | Zeitungen  | f | small,text
picture    | pictures   | Bild     | Bilder     | n | small
gift       | gifts      | Geschenk | Geschenke  | n | small,openable
flower     | flowers    | Blume    | Blumen     | f | small
car        | cars       | Auto     | Autos      | n | thing,inside,landmark
bicycle    | bicycles   | Fahrrad  | Fahrräder  | n | thing
table      | tables     | Tisch    | Tische     | m | thing,cover
chair      | chairs     | Stuhl    | Stühle     | m | thing,cover
bed        | beds       | Bett     | Betten     | n | thing,cover
lamp       | lamps      | Lampe    | Lampen     | f | thing
door       | doors      | Tür      | Türen      | f | openable
window     | windows    | Fenster  | Fenster    | n | openable
song       | songs      | Lied     | Lieder     | n | sound
apple      | apples     | Apfel    | Äpfel      | m | food
cake       | cakes      | Kuchen   | Kuchen     | m | food
egg        | eggs       | Ei       | Eier       | n | food
soup       | soups      | Suppe    | Suppen     | f | food
banana     | bananas    | Banane   | Bananen    | f | food
sausage    | sausages   | Wurst    | Würste     | f | food
garden     | gardens    | Garten   | Gärten     | m | inside,through
park       | parks      | Park     | Parks      | m | inside,through,goal
kitchen    | kitchens   | Küche    | Küchen     | f | inside
school     | schools    | Schule   | Schulen    | f | inside,landmark,goal
city       | cities     | Stadt    | Städte     | f | inside,through,goal
house      | houses     | Haus     | Häuser     | n | inside,landmark,through,goal
room       | rooms      | Zimmer   | Zimmer     | n | inside
church     | churches   | Kirche   | Kirchen    | f | inside,landmark,goal
station    | stations   | Bahnhof  | Bahnhöfe   | m | inside,landmark,goal
forest     | forests    | Wald     | Wälder     | m | inside,through
tree       | trees      | Baum     | Bäume      | m | landmark,cover,goal
bridge     | bridges    | Brücke   | Brücken    | f | cover,goal
""")]


@dataclass(frozen=True)
class Verb:
    """A verb in both languages, present tense.

    ``de`` holds the German finite forms for (ich, du, er/sie, wir/sie); ``particle``
    is the separable prefix ("an" in anrufen), which stays at the end of a main clause
    and joins the verb at the end of a subordinate one. ``frame`` says what the verb
    takes: "intr" (nothing), "tr" (a direct object, accusative), "ditr" (a recipient in
    the dative and an object), "motion" (a direction), "that" (a clause). ``subject``
    and ``objects`` are noun tags; ``pps`` the kinds of prepositional phrase it allows.
    """
    en: str
    en_3sg: str
    de: tuple
    particle: str
    frame: str
    subject: frozenset
    objects: frozenset
    pps: tuple

    @property
    def infinitive(self):
        return self.particle + self.de[3]

    def german(self, person, final=False):
        """The finite form for ``person`` (index into PERSONS); ``final``: clause-final,
        where a separable particle joins the verb (weil sie ihn anruft)."""
        form = self.de[person]
        return self.particle + form if final and self.particle else form

    def english(self, person):
        return self.en_3sg if PERSONS[person] == "3sg" else self.en


VERBS = [Verb(en, en_3sg, tuple(de.split()), particle, frame, _tags(subj), _tags(objs),
              tuple(_tags(pps)))
         for en, en_3sg, de, particle, frame, subj, objs, pps in _rows("""
# base  | 3sg       | ich du er wir                       | particle | frame | subject  | objects | PPs
see     | sees      | sehe siehst sieht sehen             |    | tr     | person,animal | any | loc
have    | has       | habe hast hat haben                 |    | tr     | person,animal | animal,thing,small,food | -
like    | likes     | mag magst mag mögen                 |    | tr     | person,animal | any | -
buy     | buys      | kaufe kaufst kauft kaufen           |    | tr     | person | animal,thing,small,food | ben,loc
read    | reads     | lese liest liest lesen              |    | tr     | person | text | loc,com
eat     | eats      | esse isst isst essen                |    | tr     | person,animal | food | loc
find    | finds     | finde findest findet finden         |    | tr     | person,animal | person,animal,small,food | loc
need    | needs     | brauche brauchst braucht brauchen   |    | tr     | person | thing,small,food | -
visit   | visits    | besuche besuchst besucht besuchen   |    | tr     | person | person | loc
love    | loves     | liebe liebst liebt lieben           |    | tr     | person | person,animal | -
draw    | draws     | zeichne zeichnest zeichnet zeichnen |    | tr     | person | any | ben
carry   | carries   | trage trägst trägt tragen           |    | tr     | person | small,food | ben
hold    | holds     | halte hältst hält halten            |    | tr     | person | small | -
wash    | washes    | wasche wäschst wäscht waschen       |    | tr     | person | animal,thing,small | loc
sell    | sells     | verkaufe verkaufst verkauft verkaufen |  | tr     | person | animal,thing,small,food | -
hear    | hears     | höre hörst hört hören               |    | tr     | person,animal | person,animal,sound | loc
know    | knows     | kenne kennst kennt kennen           |    | tr     | person | person,animal,sound | -
take    | takes     | nehme nimmst nimmt nehmen           |    | tr     | person | small,food | -
cook    | cooks     | koche kochst kocht kochen           |    | tr     | person | food | ben,loc
call    | calls     | rufe rufst ruft rufen               | an | tr     | person | person | -
open    | opens     | mache machst macht machen           | auf| tr     | person | openable | ben
pick up | picks up  | hole holst holt holen               | ab | tr     | person | person,animal | -
get     | gets      | bekomme bekommst bekommt bekommen   |    | tr     | person | small,food,animal | src
give    | gives     | gebe gibst gibt geben               |    | ditr   | person | small,food | -
show    | shows     | zeige zeigst zeigt zeigen           |    | ditr   | person | small,animal | -
sleep   | sleeps    | schlafe schläfst schläft schlafen   |    | intr   | person,animal | - | loc,com
play    | plays     | spiele spielst spielt spielen       |    | intr   | person,animal | - | loc,com,without
sing    | sings     | singe singst singt singen           |    | intr   | person | - | loc,com
wait    | waits     | warte wartest wartet warten         |    | intr   | person,animal | - | loc,com,without
work    | works     | arbeite arbeitest arbeitet arbeiten |    | intr   | person | - | loc,com
laugh   | laughs    | lache lachst lacht lachen           |    | intr   | person | - | loc,com
go      | goes      | gehe gehst geht gehen               |    | motion | person,animal | - | dir,com,without
run     | runs      | renne rennst rennt rennen           |    | motion | person,animal | - | dir,com,without
come    | comes     | komme kommst kommt kommen           |    | motion | person,animal | - | dir,com,without
drive   | drives    | fahre fährst fährt fahren           |    | motion | person | - | dir,com,without
know    | knows     | weiß weißt weiß wissen              |    | that   | person | - | -
think   | thinks    | glaube glaubst glaubt glauben       |    | that   | person | - | -
say     | says      | sage sagst sagt sagen               |    | that   | person | - | -
hope    | hopes     | hoffe hoffst hofft hoffen           |    | that   | person | - | -
""")]
# A recipient (the dative object of give/show) must be one of these.
RECIPIENT_TAGS = frozenset({"person", "animal"})


@dataclass(frozen=True)
class Adjective:
    """An attributive adjective. ``de`` is the stem the endings attach to ("müd" for
    müde: every attributive ending starts with -e)."""
    en: str
    de: str
    tags: frozenset


ADJECTIVES = [Adjective(en, de, _tags(tags)) for en, de, tags in _rows("""
big       | groß    | any
small     | klein   | any
old       | alt     | any
beautiful | schön   | any
new       | neu     | thing,small,text,openable,inside,landmark
young     | jung    | person,animal
tired     | müd     | person,animal
hungry    | hungrig | person,animal
clever    | klug    | person,animal
nice      | nett    | person
funny     | lustig  | person,animal
red       | rot     | thing,small,openable
blue      | blau    | thing,small,openable
black     | schwarz | animal,thing,small
white     | weiß    | animal,thing,small
yellow    | gelb    | thing,small
fresh     | frisch  | food
sweet     | süß     | food
""")]


@dataclass(frozen=True)
class Preposition:
    """A preposition: the case it governs in German, the kind of phrase it makes
    ("loc" where, "dir" where to, "com" with whom, "without", "ben" for whom, "src"
    from whom), and the tags of nouns it makes sense with."""
    en: str
    de: str
    case: str
    kind: str
    tags: frozenset


PREPOSITIONS = [Preposition(en, de, case, kind, _tags(tags)) for en, de, case, kind, tags in _rows("""
in          | in     | dat | loc     | inside
behind      | hinter | dat | loc     | landmark
next to     | neben  | dat | loc     | landmark
in front of | vor    | dat | loc     | landmark
under       | unter  | dat | loc     | cover
with        | mit    | dat | com     | person,animal
without     | ohne   | acc | without | person,animal
for         | für    | acc | ben     | person,animal
to          | zu     | dat | dir     | goal,person,animal
into        | in     | acc | dir     | inside
through     | durch  | acc | dir     | through
from        | von    | dat | src     | person
""")]

NAMES = ["Anna", "Tom", "Maria", "Paul", "Lisa", "Max", "Emma", "Ben", "Julia", "Felix",
         "Sophie", "Leon"]
# English subject pronoun -> (German pronoun, person index). "you" is always "du",
# so that every English sentence has exactly one German translation.
PRONOUNS = {"I": ("ich", 0), "you": ("du", 1), "he": ("er", 2), "she": ("sie", 2),
            "we": ("wir", 3), "they": ("sie", 3)}
# English determiner -> (German stem, declension). "def": der/die/das, "ein": ein and
# the possessives; None (no determiner) is only for plurals: "dogs" -> "Hunde".
DETERMINERS = {"the": ("d", "def"), "a": ("ein", "ein"), "my": ("mein", "ein"),
               "your": ("dein", "ein"), "his": ("sein", "ein"), "her": ("ihr", "ein"),
               "our": ("unser", "ein"), "their": ("ihr", "ein")}
TIME_ADVERBS = {"today": "heute", "now": "jetzt", "tomorrow": "morgen",
                "sometimes": "manchmal", "every day": "jeden Tag"}
CONJUNCTIONS = {"because": "weil", "when": "wenn", "that": "dass"}


# ================================================================ phrases
def _fits(tags, wanted):
    return "any" in wanted or bool(tags & wanted)


@dataclass(frozen=True)
class NounPhrase:
    """A noun phrase: a pronoun, a name, or [determiner] [adjective] noun.

    ``determiner`` is an English key of :data:`DETERMINERS` or None (bare plural)."""
    noun: Noun = None
    determiner: str = "the"
    adjective: Adjective = None
    plural: bool = False
    name: str = None
    pronoun: str = None

    @property
    def person(self):
        """Index into PERSONS of the verb form this phrase takes as a subject."""
        if self.pronoun:
            return PRONOUNS[self.pronoun][1]
        return 3 if self.plural else 2

    @property
    def tags(self):
        if self.noun is None:
            return frozenset({"person"})
        return self.noun.tags

    def english(self):
        if self.pronoun:
            return [self.pronoun]
        if self.name:
            return [self.name]
        words = ([self.adjective.en] if self.adjective else [])
        words.append(self.noun.en_plural if self.plural else self.noun.en)
        if self.determiner == "a":
            return ["an" if words[0][0] in "aeiou" else "a"] + words
        return ([self.determiner] if self.determiner else []) + words

    def german(self, case):
        """The German words of this phrase in ``case`` ("nom", "acc" or "dat")."""
        if self.pronoun:
            return [PRONOUNS[self.pronoun][0]]
        if self.name:
            return [self.name]
        key = "pl" if self.plural else self.noun.gender
        words = []
        if self.determiner is None:
            endings = STRONG_ENDING
        else:
            stem, declension = DETERMINERS[self.determiner]
            if declension == "def":
                words.append(DEFINITE_ARTICLE[case][key])
                endings = WEAK_ENDING
            else:
                words.append(stem + EIN_WORD_ENDING[case][key])
                endings = MIXED_ENDING
        if self.adjective:
            words.append(self.adjective.de + endings[case][key])
        words.append(self.noun.german(case, self.plural))
        return words


@dataclass(frozen=True)
class PrepPhrase:
    """A preposition and its noun phrase, in the case the German preposition governs."""
    preposition: Preposition
    np: NounPhrase

    def english(self):
        return self.preposition.en.split() + self.np.english()

    def german(self):
        words = self.np.german(self.preposition.case)
        contracted = CONTRACTIONS.get((self.preposition.de, words[0]))
        if contracted and self.np.determiner == "the":
            return [contracted] + words[1:]  # "in dem Garten" -> "im Garten"
        return [self.preposition.de] + words


@dataclass(frozen=True)
class Clause:
    """Subject, verb and what the verb takes; word order is decided when rendering.

    ``object``: direct object (accusative); ``recipient``: the dative object of
    give/show; ``pp``: one prepositional phrase; ``complement``: the clause of a
    "that" verb (know/think/say/hope)."""
    subject: NounPhrase
    verb: Verb
    object: NounPhrase = None
    recipient: NounPhrase = None
    pp: PrepPhrase = None
    complement: "Clause" = None

    # ---- English: subject, verb, objects, PP in every construction
    def _english_rest(self):
        words = []
        if self.recipient:
            words += self.recipient.english()
        if self.object:
            words += self.object.english()
        if self.pp:
            words += self.pp.english()
        if self.complement:
            words += ["that"] + self.complement.english_statement()
        return words

    def english_statement(self):
        return (self.subject.english() + self.verb.english(self.subject.person).split()
                + self._english_rest())

    def english_question(self):
        """Do-support: "does the dog see ...", "do you see ..."."""
        aux = "does" if PERSONS[self.subject.person] == "3sg" else "do"
        return [aux] + self.subject.english() + self.verb.en.split() + self._english_rest()

    # ---- German: the verb moves; the middle field stays in one order
    def _middle(self):
        """What stands between the finite verb and the end of the clause: dative
        recipient before accusative object (both full noun phrases), then the PP."""
        words = []
        if self.recipient:
            words += self.recipient.german("dat")
        if self.object:
            words += self.object.german("acc")
        if self.pp:
            words += self.pp.german()
        return words

    def _german_tail(self):
        """The separable particle closes the main clause; a that-clause follows."""
        words = [self.verb.particle] if self.verb.particle else []
        if self.complement:
            words += [",", "dass"] + self.complement.german_subordinate()
        return words

    def german_main(self, first=None):
        """Verb second. ``first`` fills the first position instead of the subject (a
        time adverb or a whole subordinate clause); the subject then follows the verb."""
        verb = self.verb.german(self.subject.person)
        subject = self.subject.german("nom")
        if first is None:
            return subject + [verb] + self._middle() + self._german_tail()
        return first + [verb] + subject + self._middle() + self._german_tail()

    def german_question(self):
        """Verb first."""
        return ([self.verb.german(self.subject.person)] + self.subject.german("nom")
                + self._middle() + self._german_tail())

    def german_subordinate(self):
        """Verb last, with its separable particle joined on (dass sie ihn anruft)."""
        if self.complement:
            raise ValueError("a subordinate clause cannot itself take a that-clause here")
        return (self.subject.german("nom") + self._middle()
                + [self.verb.german(self.subject.person, final=True)])


# ================================================================ sentences
def _text(words, end):
    """Words -> a sentence: punctuation attached, first letter capitalised."""
    text = " ".join(words) + end
    text = text.replace(" ,", ",")
    return text[0].upper() + text[1:]


def render(clause, form="statement", time=None):
    """One clause as an ``(english, german)`` sentence pair.

    ``form``: "statement" (German verb second) or "question" (English do-support,
    German verb first). ``time``: an English time adverb (a key of TIME_ADVERBS) put
    first in a statement; German then inverts subject and verb."""
    if form == "question":
        if time is not None:
            raise ValueError("time adverbs are only generated in statements")
        return (_text(clause.english_question(), "?"), _text(clause.german_question(), "?"))
    if form != "statement":
        raise ValueError(f"form must be 'statement' or 'question', got {form!r}")
    if time is None:
        return _text(clause.english_statement(), "."), _text(clause.german_main(), ".")
    return (_text(time.split() + clause.english_statement(), "."),
            _text(clause.german_main(first=TIME_ADVERBS[time].split()), "."))


def render_complex(main, conjunction, sub, sub_first=False):
    """A main clause and a subordinate clause joined by "because" (weil) or "when"
    (wenn). German puts the subordinate verb last; with ``sub_first`` the subordinate
    clause fills the first position, so the main clause's verb comes right after it:
    "Wenn der Hund schläft, liest der Mann." For "that" clauses use
    ``Clause(complement=...)`` with a "that" verb and :func:`render`."""
    if conjunction not in ("because", "when"):
        raise ValueError(f"conjunction must be 'because' or 'when', got {conjunction!r}")
    de_sub = [CONJUNCTIONS[conjunction]] + sub.german_subordinate()
    en_sub = [conjunction] + sub.english_statement()
    if sub_first:
        return (_text(en_sub + [","] + main.english_statement(), "."),
                _text(main.german_main(first=de_sub + [","]), "."))
    return (_text(main.english_statement() + en_sub, "."),
            _text(main.german_main() + [","] + de_sub, "."))


# ================================================================ building by hand
def verb(name, frame=None):
    """The verb with English base form (or German infinitive) ``name``; ``frame``
    chooses between homonyms ("know": "tr" kennen, "that" wissen)."""
    found = [v for v in VERBS if name in (v.en, v.infinitive) and frame in (None, v.frame)]
    if len(found) != 1:
        raise KeyError(f"no single verb {name!r} (frame={frame!r}): found {len(found)}")
    return found[0]


def phrase(text):
    """A NounPhrase from English words: "the big dog", "a small ball", "my cats",
    "dogs", "Anna", "she"."""
    words = text.split()
    if len(words) == 1 and words[0] in PRONOUNS:
        return NounPhrase(pronoun=words[0])
    if len(words) == 1 and words[0] in NAMES:
        return NounPhrase(name=words[0])
    determiner = words.pop(0) if words[0] in DETERMINERS or words[0] == "an" else None
    if determiner == "an":
        determiner = "a"
    *adjectives, head = words
    noun = next((n for n in NOUNS if head in (n.en, n.en_plural)), None)
    if noun is None or len(adjectives) > 1:
        raise KeyError(f"cannot read noun phrase {text!r}")
    adjective = None
    if adjectives:
        adjective = next((a for a in ADJECTIVES if a.en == adjectives[0]), None)
        if adjective is None:
            raise KeyError(f"unknown adjective {adjectives[0]!r}")
    plural = head == noun.en_plural
    if plural and determiner == "a" or not plural and determiner is None:
        raise ValueError(f"{text!r}: 'a' needs a singular, no determiner a plural")
    return NounPhrase(noun, determiner, adjective, plural)


def prep_phrase(text):
    """A PrepPhrase from English words: "with the small child", "into the house"."""
    for prep in sorted(PREPOSITIONS, key=lambda p: -len(p.en)):  # "in front of" before "in"
        if text.startswith(prep.en + " "):
            return PrepPhrase(prep, phrase(text[len(prep.en) + 1:]))
    raise KeyError(f"no preposition starts {text!r}")


# ================================================================ random sentences
_CLAUSE_VERBS = [v for v in VERBS if v.frame != "that"]
_THAT_VERBS = [v for v in VERBS if v.frame == "that"]
_POSSESSIVES = ["my", "your", "his", "her", "our", "their"]


@functools.lru_cache(maxsize=None)
def _nouns_with(tags):
    """The nouns carrying one of ``tags``, in lexicon order (cached: drawn per phrase)."""
    return [n for n in NOUNS if _fits(n.tags, tags)]


@functools.lru_cache(maxsize=None)
def _adjectives_for(noun):
    return [a for a in ADJECTIVES if _fits(noun.tags, a.tags)]


@functools.lru_cache(maxsize=None)
def _prepositions_for(v):
    return [p for p in PREPOSITIONS if p.kind in v.pps]


def _random_np(rng, tags, pronoun_ok=False):
    """A random noun phrase whose noun carries one of ``tags``."""
    r = rng.random()
    if "person" in tags or "any" in tags:
        if pronoun_ok and r < 0.2:
            return NounPhrase(pronoun=rng.choice(list(PRONOUNS)))
        if r > 0.88:
            return NounPhrase(name=rng.choice(NAMES))
    noun = rng.choice(_nouns_with(tags))
    plural = rng.random() < 0.25
    r = rng.random()
    if plural:
        determiner = "the" if r < 0.6 else (None if r < 0.8 else rng.choice(_POSSESSIVES))
    else:
        determiner = "the" if r < 0.55 else ("a" if r < 0.8 else rng.choice(_POSSESSIVES))
    if determiner in _POSSESSIVES and "person" in noun.tags and "kin" not in noun.tags:
        determiner = "the"  # "my sister", but not "my woman" (which would mean "my wife")
    adjective = None
    if rng.random() < 0.3:
        adjective = rng.choice(_adjectives_for(noun))
    return NounPhrase(noun, determiner, adjective, plural)


def _random_clause(rng, verbs=_CLAUSE_VERBS, pp_rate=0.35):
    v = rng.choice(verbs)
    subject = _random_np(rng, v.subject, pronoun_ok=True)
    obj = recipient = pp = None
    if v.frame in ("tr", "ditr"):
        obj = _random_np(rng, v.objects)
    if v.frame == "ditr":
        recipient = _random_np(rng, RECIPIENT_TAGS)
    if v.pps and rng.random() < pp_rate:
        prep = rng.choice(_prepositions_for(v))
        pp = PrepPhrase(prep, _random_np(rng, prep.tags))
    return Clause(subject, v, obj, recipient, pp)


# Constructions and how often each is drawn.
CONSTRUCTIONS = {"statement": 0.25, "time": 0.15, "question": 0.2, "because": 0.12,
                 "when": 0.13, "that": 0.15}


def random_pair(rng):
    """One random ``(english, german)`` pair drawn with ``rng`` (a random.Random)."""
    kind = rng.choices(list(CONSTRUCTIONS), weights=list(CONSTRUCTIONS.values()))[0]
    if kind == "statement":
        return render(_random_clause(rng))
    if kind == "time":
        return render(_random_clause(rng), time=rng.choice(list(TIME_ADVERBS)))
    if kind == "question":
        return render(_random_clause(rng), form="question")
    if kind == "that":
        main = _random_clause(rng, _THAT_VERBS)
        main = Clause(main.subject, main.verb, complement=_random_clause(rng, pp_rate=0.2))
        return render(main)
    main, sub = _random_clause(rng, pp_rate=0.2), _random_clause(rng, pp_rate=0.2)
    return render_complex(main, kind, sub, sub_first=kind == "when" and rng.random() < 0.5)


def _n_tokens(sentence):
    # Words plus punctuation marks, as the tokenizer will count them.
    return len(sentence.split()) + sum(sentence.count(p) for p in ",.?")


def generate_pairs(n, seed=0):
    """``n`` distinct ``(english, german)`` pairs (no English sentence twice), drawn
    from the grammar with a generator seeded by ``seed``: the same seed gives the same
    list. Sentences have MIN_TOKENS to MAX_TOKENS tokens on both sides."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    pairs, seen = [], set()
    attempts = 0
    while len(pairs) < n:
        attempts += 1
        if attempts > 20 * n + 1000:
            raise RuntimeError(f"could not draw {n} distinct sentences from the grammar")
        en, de = random_pair(rng)
        if en in seen or not all(MIN_TOKENS <= _n_tokens(s) <= MAX_TOKENS for s in (en, de)):
            continue
        seen.add(en)
        pairs.append((en, de))
    return pairs


def load_corpus(size=20000, seed=0, splits=(0.8, 0.1, 0.1)):
    """The built-in corpus: ``size`` distinct pairs split into
    ``{"train": [...], "valid": [...], "test": [...]}`` lists of ``(english, german)``
    pairs. No English sentence appears in two splits. Deterministic for a seed."""
    return split_pairs(generate_pairs(size, seed), splits=splits, seed=seed)
