"""The built-in English -> German corpus: hand-checked German, determinism, splits."""
import pytest

from minitransformer.translation import grammar as g
from minitransformer.translation.grammar import (Clause, load_corpus, generate_pairs, phrase,
                                                 prep_phrase, render, render_complex, verb)
from minitransformer.translation.vocab import tokenize


def clause(subject, v, obj=None, recipient=None, pp=None, frame=None, complement=None):
    """A Clause from English words, for readable tests."""
    return Clause(phrase(subject), verb(v, frame), phrase(obj) if obj else None,
                  phrase(recipient) if recipient else None,
                  prep_phrase(pp) if pp else None, complement)


# Each German sentence below was checked by hand: articles and adjective endings by
# gender, case, number and article type; verb agreement; word order.
STATEMENTS = [
    # articles by gender, nominative subject, accusative object
    (clause("the dog", "sleep"), "The dog sleeps.", "Der Hund schläft."),
    (clause("the cat", "see", "the child"), "The cat sees the child.",
     "Die Katze sieht das Kind."),
    (clause("the child", "see", "the dog"), "The child sees the dog.",
     "Das Kind sieht den Hund."),
    # adjective endings: weak after der/die/das, mixed after ein/possessives, strong alone
    (clause("the big dog", "see", "a small ball"), "The big dog sees a small ball.",
     "Der große Hund sieht einen kleinen Ball."),
    (clause("the woman", "have", "a big dog"), "The woman has a big dog.",
     "Die Frau hat einen großen Hund."),
    (clause("a small child", "read", "a new book"), "A small child reads a new book.",
     "Ein kleines Kind liest ein neues Buch."),
    (clause("a tired teacher", "see", "a red car"), "A tired teacher sees a red car.",
     "Ein müder Lehrer sieht ein rotes Auto."),
    (clause("a young woman", "buy", "a blue bag"), "A young woman buys a blue bag.",
     "Eine junge Frau kauft eine blaue Tasche."),
    (clause("the man", "see", "a tired dog"), "The man sees a tired dog.",
     "Der Mann sieht einen müden Hund."),
    (clause("an old man", "eat", "an egg"), "An old man eats an egg.",
     "Ein alter Mann isst ein Ei."),
    # plural: article die, verb in the plural, possessive + adjective -en, strong -e
    (clause("the children", "see", "the dogs"), "The children see the dogs.",
     "Die Kinder sehen die Hunde."),
    (clause("my old dogs", "eat", "the fresh apples"), "My old dogs eat the fresh apples.",
     "Meine alten Hunde essen die frischen Äpfel."),
    (clause("hungry cats", "eat", "fresh sausages"), "Hungry cats eat fresh sausages.",
     "Hungrige Katzen essen frische Würste."),
    # possessives
    (clause("our teacher", "like", "your picture"), "Our teacher likes your picture.",
     "Unser Lehrer mag dein Bild."),
    (clause("her brothers", "visit", "our sister"), "Her brothers visit our sister.",
     "Ihre Brüder besuchen unsere Schwester."),
    # dative after dative prepositions, with contractions (in dem -> im, zu der -> zur)
    (clause("the man", "play", pp="with the small child"),
     "The man plays with the small child.", "Der Mann spielt mit dem kleinen Kind."),
    (clause("the dog", "wait", pp="with the old woman"), "The dog waits with the old woman.",
     "Der Hund wartet mit der alten Frau."),
    (clause("the man", "play", pp="with the children"), "The man plays with the children.",
     "Der Mann spielt mit den Kindern."),
    (clause("the girl", "play", pp="with small dogs"), "The girl plays with small dogs.",
     "Das Mädchen spielt mit kleinen Hunden."),
    (clause("the cat", "play", pp="with the girls"), "The cat plays with the girls.",
     "Die Katze spielt mit den Mädchen."),
    (clause("we", "sleep", pp="in the garden"), "We sleep in the garden.",
     "Wir schlafen im Garten."),
    (clause("the cook", "work", pp="in the kitchen"), "The cook works in the kitchen.",
     "Der Koch arbeitet in der Küche."),
    (clause("the cat", "sleep", pp="under the table"), "The cat sleeps under the table.",
     "Die Katze schläft unter dem Tisch."),
    (clause("the boy", "wait", pp="in front of the school"),
     "The boy waits in front of the school.", "Der Junge wartet vor der Schule."),
    (clause("they", "find", "their keys", pp="in the car"), "They find their keys in the car.",
     "Sie finden ihre Schlüssel im Auto."),
    (clause("the child", "go", pp="to the school"), "The child goes to the school.",
     "Das Kind geht zur Schule."),
    (clause("the dog", "run", pp="to the tree"), "The dog runs to the tree.",
     "Der Hund rennt zum Baum."),
    (clause("the girl", "get", "a letter", pp="from the teacher"),
     "The girl gets a letter from the teacher.", "Das Mädchen bekommt einen Brief vom Lehrer."),
    # two-way preposition "in" with the accusative for a direction (in das -> ins)
    (clause("the cat", "run", pp="into the house"), "The cat runs into the house.",
     "Die Katze rennt ins Haus."),
    (clause("the boy", "go", pp="into the garden"), "The boy goes into the garden.",
     "Der Junge geht in den Garten."),
    # accusative prepositions
    (clause("the woman", "cook", "a soup", pp="for the dog"),
     "The woman cooks a soup for the dog.", "Die Frau kocht eine Suppe für den Hund."),
    (clause("the children", "run", pp="through the park"), "The children run through the park.",
     "Die Kinder rennen durch den Park."),
    (clause("she", "come", pp="without the dog"), "She comes without the dog.",
     "Sie kommt ohne den Hund."),
    # dative recipient before the accusative object
    (clause("the man", "give", "a book", recipient="the child"),
     "The man gives the child a book.", "Der Mann gibt dem Kind ein Buch."),
    (clause("the teacher", "show", "the beautiful picture", recipient="a girl"),
     "The teacher shows a girl the beautiful picture.",
     "Der Lehrer zeigt einem Mädchen das schöne Bild."),
    (clause("the boy", "give", "a red flower", recipient="his mother"),
     "The boy gives his mother a red flower.", "Der Junge gibt seiner Mutter eine rote Blume."),
    # weak masculine nouns: -n outside the nominative singular
    (clause("the girl", "see", "the boy"), "The girl sees the boy.",
     "Das Mädchen sieht den Jungen."),
    (clause("the child", "play", pp="with the lion"), "The child plays with the lion.",
     "Das Kind spielt mit dem Löwen."),
    # verb agreement with pronouns, including stem-vowel changes (sehen: siehst, sieht)
    (clause("I", "see", "the dog"), "I see the dog.", "Ich sehe den Hund."),
    (clause("you", "see", "the cat"), "You see the cat.", "Du siehst die Katze."),
    (clause("you", "read", "the newspaper"), "You read the newspaper.",
     "Du liest die Zeitung."),
    (clause("he", "eat", "an apple"), "He eats an apple.", "Er isst einen Apfel."),
    (clause("she", "carry", "the bag"), "She carries the bag.", "Sie trägt die Tasche."),
    (clause("they", "hold", "the keys"), "They hold the keys.", "Sie halten die Schlüssel."),
    (clause("Anna", "see", "Tom"), "Anna sees Tom.", "Anna sieht Tom."),
    # separable verbs: the particle closes the main clause, after objects and PPs
    (clause("the woman", "call", "the man"), "The woman calls the man.",
     "Die Frau ruft den Mann an."),
    (clause("the man", "open", "the door", pp="for the child"),
     "The man opens the door for the child.", "Der Mann macht die Tür für das Kind auf."),
]


@pytest.mark.parametrize("c, english, german", STATEMENTS,
                         ids=[e for _, e, _ in STATEMENTS])
def test_statements(c, english, german):
    assert render(c) == (english, german)


@pytest.mark.parametrize("c, english, german", [
    (clause("the dog", "see", "the ball"), "Does the dog see the ball?",
     "Sieht der Hund den Ball?"),
    (clause("you", "see", "the dog"), "Do you see the dog?", "Siehst du den Hund?"),
    (clause("the children", "eat", "the cake"), "Do the children eat the cake?",
     "Essen die Kinder den Kuchen?"),
    (clause("the father", "pick up", "the child"), "Does the father pick up the child?",
     "Holt der Vater das Kind ab?"),
    (clause("Anna", "know", frame="that", complement=clause("Tom", "sing")),
     "Does Anna know that Tom sings?", "Weiß Anna, dass Tom singt?"),
])
def test_questions_put_the_verb_first(c, english, german):
    assert render(c, form="question") == (english, german)


@pytest.mark.parametrize("time, c, english, german", [
    ("today", clause("the dog", "see", "the ball"), "Today the dog sees the ball.",
     "Heute sieht der Hund den Ball."),
    ("every day", clause("we", "visit", "the old teacher"),
     "Every day we visit the old teacher.", "Jeden Tag besuchen wir den alten Lehrer."),
    ("tomorrow", clause("the woman", "call", "my father"), "Tomorrow the woman calls my father.",
     "Morgen ruft die Frau meinen Vater an."),
])
def test_time_adverb_forces_inversion(time, c, english, german):
    assert render(c, time=time) == (english, german)


@pytest.mark.parametrize("main, conj, sub, first, english, german", [
    (clause("the man", "read", "a book"), "because", clause("the dog", "see", "the ball"), False,
     "The man reads a book because the dog sees the ball.",
     "Der Mann liest ein Buch, weil der Hund den Ball sieht."),
    (clause("I", "laugh"), "because", clause("you", "sing"), False,
     "I laugh because you sing.", "Ich lache, weil du singst."),
    (clause("the dog", "wait"), "because", clause("the man", "open", "the door"), False,
     "The dog waits because the man opens the door.",
     "Der Hund wartet, weil der Mann die Tür aufmacht."),
    (clause("Anna", "laugh"), "when", clause("the boy", "give", "an apple", recipient="the horse"),
     False, "Anna laughs when the boy gives the horse an apple.",
     "Anna lacht, wenn der Junge dem Pferd einen Apfel gibt."),
    (clause("the cat", "sleep"), "when", clause("the children", "play", pp="in the garden"), False,
     "The cat sleeps when the children play in the garden.",
     "Die Katze schläft, wenn die Kinder im Garten spielen."),
    # the subordinate clause first: it fills the first position, the main verb follows
    (clause("the man", "read", "the newspaper"), "when", clause("the dog", "sleep"), True,
     "When the dog sleeps, the man reads the newspaper.",
     "Wenn der Hund schläft, liest der Mann die Zeitung."),
])
def test_subordinate_clauses_put_the_verb_last(main, conj, sub, first, english, german):
    assert render_complex(main, conj, sub, sub_first=first) == (english, german)


def test_that_clause_with_separable_verb():
    c = clause("I", "know", frame="that", complement=clause("the woman", "call", "the man"))
    assert render(c) == ("I know that the woman calls the man.",
                         "Ich weiß, dass die Frau den Mann anruft.")


def test_weak_noun_forms():
    boy = phrase("the boy")
    assert [boy.german(case) for case in ("nom", "acc", "dat")] == [
        ["der", "Junge"], ["den", "Jungen"], ["dem", "Jungen"]]


def test_building_errors_are_clear():
    with pytest.raises(KeyError):
        phrase("the unicorn")
    with pytest.raises(ValueError):
        phrase("a dogs")
    with pytest.raises(KeyError):
        verb("know")  # two verbs: kennen and wissen; frame= picks one


@pytest.mark.slow
# ---------------------------------------------------------------- the generated corpus
def test_generation_is_deterministic_per_seed():
    assert generate_pairs(300, seed=7) == generate_pairs(300, seed=7)
    assert generate_pairs(300, seed=7) != generate_pairs(300, seed=8)


def test_sentences_are_short_and_distinct():
    pairs = generate_pairs(2000, seed=1)
    assert len({en for en, _ in pairs}) == 2000
    for en, de in pairs:
        for sentence in (en, de):
            assert g.MIN_TOKENS <= len(tokenize(sentence)) <= g.MAX_TOKENS, sentence
        assert en[-1] == de[-1] and en[-1] in ".?"


def test_every_construction_is_generated():
    pairs = generate_pairs(2000, seed=2)
    german = [de for _, de in pairs]
    for marker in (", weil ", ", dass ", ", wenn ", "Wenn ", "Heute ", "?"):
        assert any(marker in de for de in german), marker


def test_subordinate_clauses_end_with_a_finite_verb():
    finite = {v.german(p, final=True) for v in g.VERBS for p in range(4)}
    for _, de in generate_pairs(3000, seed=3):
        for conj in (", weil ", ", dass ", ", wenn "):
            if conj in de:
                clause_words = de.split(conj)[1].rstrip(".?").split(",")[0].split()
                assert clause_words[-1] in finite, de


@pytest.mark.slow
def test_load_corpus_splits_are_disjoint_and_sized():
    corpus = load_corpus(size=3000, seed=5)
    assert [len(corpus[k]) for k in ("train", "valid", "test")] == [2400, 300, 300]
    sources = {k: {en for en, _ in v} for k, v in corpus.items()}
    assert not sources["train"] & sources["test"]
    assert not sources["train"] & sources["valid"]
    assert not sources["valid"] & sources["test"]
    assert load_corpus(size=3000, seed=5) == corpus
