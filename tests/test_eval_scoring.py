"""Scoring functions of `morris eval` on texts whose answers are known by hand."""

from __future__ import annotations

import random

import numpy as np
import pytest

from morris_mlx.errors import MorrisError
from morris_mlx.evaluation import attribution, degeneration, markers, stylometry
from morris_mlx.evaluation.run import score_style
from morris_mlx.evaluation.text import chunk_words, sentences, truncate_words, words

WRITER = [
    "Like a corpse in a ditch, the operator sank (and who could blame it?) without a murmur.",
    "What could possibly go wrong?",
    "Colour me sceptical, but the organisation's fibre plans look grim.",
    "The vendors, needless to say, were already counting the money.",
    "It is a bit like rearranging deckchairs on a sinking ship, only with more PowerPoint.",
    "Nobody, it seems, asked the customers.",
]
GENERIC = [
    "The company announced a new partnership today to deliver innovative solutions.",
    "Customers will benefit from faster speeds and improved reliability across the network.",
    "The initiative is expected to drive growth and create value for stakeholders.",
    "Executives said they were excited about the opportunities ahead.",
    "The program will be rolled out in several markets over the coming year.",
    "Analysts expect the market to grow steadily as demand increases.",
]


def compose(bank: list[str], n: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(bank) for _ in range(n))


# --- shared text helpers ---------------------------------------------------------------------------

def test_words_and_sentences():
    text = "# A title here\n\nIt's grim. Is it? Yes!\n\nA new paragraph without a stop\nNext one."
    assert words("It's 5G, isn't it?") == ["it's", "g", "isn't", "it"]
    assert sentences(text) == ["It's grim.", "Is it?", "Yes!", "A new paragraph without a stop\nNext one."]


def test_chunk_and_truncate():
    text = " ".join(f"w{i}" for i in range(24))
    chunks = chunk_words(text, 10)
    assert [len(c.split()) for c in chunks] == [10, 14]  # a 4-word tail joins the chunk before it
    assert chunk_words("# Title\n\none two", 10) == ["one two"]
    assert truncate_words("# Title\n\none two three", 2) == "one two"


# --- stylometry ------------------------------------------------------------------------------------

def corpus_docs() -> list[str]:
    return [compose(WRITER, 12, seed) for seed in range(12)]


def test_delta_of_a_text_against_itself_is_zero():
    model = stylometry.DeltaModel.fit(corpus_docs(), n_words=50)
    text = compose(WRITER, 10, 99)
    assert model.delta(text, text) == 0.0
    assert model.delta(text, compose(GENERIC, 10, 99)) > 0.5


def test_delta_is_smaller_for_the_same_style():
    model = stylometry.DeltaModel.fit(corpus_docs(), n_words=50)
    same = np.mean([model.delta_to_corpus(compose(WRITER, 10, s)) for s in range(100, 105)])
    other = np.mean([model.delta_to_corpus(compose(GENERIC, 10, s)) for s in range(100, 105)])
    assert same < other


def test_delta_standardises_by_spread_across_documents():
    # Two words; "a" varies across documents, "b" too: hand-computable means and deviations.
    docs = ["a a b b", "a b b b"]  # freq(a) = .5, .25; freq(b) = .5, .75
    model = stylometry.DeltaModel.fit(docs, n_words=2)
    assert model.vocabulary == ["b", "a"]
    np.testing.assert_allclose(model.mean, [0.625, 0.375])
    std = np.std([0.5, 0.25], ddof=1)
    np.testing.assert_allclose(model.std, [std, std])
    # "a a a a": freq(a) = 1, freq(b) = 0 -> |z| = .625/std and .625/std
    assert model.delta_to_corpus("a a a a") == pytest.approx(0.625 / std)


def test_delta_needs_two_documents():
    with pytest.raises(MorrisError, match="at least 2"):
        stylometry.DeltaModel.fit(["just one document"])


def test_char_profile_distance_known_values():
    p = stylometry.char_profile("the grim truth about fibre")
    assert stylometry.profile_distance(p, p) == 0.0
    assert stylometry.profile_distance({"abc": 1.0}, {"xyz": 1.0}) == 4.0
    a = {"x": 0.5, "y": 0.5}
    b = {"x": 0.5, "z": 0.5}
    assert stylometry.profile_distance(a, b) == pytest.approx(8 / 3)


def test_char_profile_relative_frequencies():
    profile = stylometry.char_profile("aaa", n=2)  # padded " aaa ": " a", "aa", "aa", "a "
    assert profile == {"aa": 0.5, " a": 0.25, "a ": 0.25}


def test_char_distance_prefers_the_same_style():
    corpus = stylometry.char_profile(corpus_docs())
    same = stylometry.profile_distance(stylometry.char_profile(compose(WRITER, 10, 7)), corpus)
    other = stylometry.profile_distance(stylometry.char_profile(compose(GENERIC, 10, 7)), corpus)
    assert same < other


# --- style markers ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lists() -> markers.MarkerLists:
    return markers.load_markers()


def test_bundled_marker_file_is_consistent(lists):
    assert lists.british and lists.american and lists.phrases and lists.lexicon
    assert not lists.british & lists.american


def test_british_and_american_spelling_counts(lists):
    text = "The organisation's colour scheme, realised in fibre, was grey. The color of the center? Gray."
    assert markers.count_spellings(text, lists) == (5, 3)  # organisation colour realised fibre grey / color center gray
    assert markers.count_spellings("Nothing to see here.", lists) == (0, 0)


def test_spelling_counts_whole_words_only(lists):
    # "colours" is listed, "colourist" is not; "centred" listed; "centrepiece" is not.
    assert markers.count_spellings("colours colourist centred centrepiece", lists) == (2, 0)


def test_asides_questions_and_phrases(lists):
    text = (
        "# Is this a title?\n\nThe RAN (RAN) vendors (and who could blame them?) cut prices. "
        "What could possibly go wrong? Really?? WHAT could possibly\ngo wrong. Whatever could possibly go wrongly."
    )
    assert markers.count_asides(text, 2) == 1
    assert markers.count_questions(text) == 3  # the title's question is not prose; "??" counts once
    assert markers.count_phrases("What could possibly go wrong? what could  possibly go wrong", lists) == 2
    assert markers.count_phrases("whatever could possibly go wrongly", lists) == 0


def test_sentence_lengths():
    assert markers.sentence_lengths("One two three. Four five! Six?") == [3, 2, 1]


def test_doom_opening_with_prefix_entries(lists):
    text = "# Grim headline\n\nLike a corpse in a ditch, the operator collapsed. " + "calm " * 100 + "dead"
    hits, n = markers.opening_hits(text, lists)
    assert n == lists.opening_words
    assert hits == 2  # corpse (corpse*), collapsed (collaps*); the title and the late "dead" are outside


def test_marker_rates_are_per_thousand_words(lists):
    text = "The colour was awful today and nobody really noticed it."  # 10 words, 1 British spelling
    rates = markers.marker_rates([text, text], lists)
    assert rates["british_spelling"] == pytest.approx(100.0)
    assert rates["american_spelling"] == 0.0
    assert rates["sentence_mean"] == 10.0 and rates["sentence_std"] == 0.0
    empty = markers.marker_rates([""], lists)
    assert np.isnan(empty["british_spelling"]) and np.isnan(empty["sentence_mean"])


def test_marker_file_errors(tmp_path):
    bad = tmp_path / "markers.toml"
    bad.write_text("[spelling]\nbritish = ['colour']\n")
    with pytest.raises(MorrisError, match="lacks the key"):
        markers.load_markers(bad)
    bad.write_text("this is = not [toml")
    with pytest.raises(MorrisError, match="not valid TOML"):
        markers.load_markers(bad)
    with pytest.raises(MorrisError, match="missing"):
        markers.load_markers(tmp_path / "absent.toml")


# --- degeneration ----------------------------------------------------------------------------------

def test_distinct_n_and_repetition_on_a_loop():
    loop = "a b a b a b"  # bigrams ab ba ab ba ab
    assert degeneration.distinct_n(loop, 2) == pytest.approx(2 / 5)
    assert degeneration.repeated_ngram_share(loop, 2) == pytest.approx(3 / 5)
    fresh = "one two three four five six"
    assert degeneration.distinct_n(fresh, 2) == 1.0
    assert degeneration.repeated_ngram_share(fresh, 2) == 0.0
    assert degeneration.distinct_n("one", 2) == 0.0
    assert degeneration.repeated_ngram_share("", 4) == 0.0


def test_longest_shared_span_known_strings():
    docs = ["The cat sat on the mat today.", "A dog ran far away from here."]
    span = degeneration.longest_shared_span("Yesterday THE cat sat on the mat, they said", docs)
    assert (span.length, span.text, span.document) == (6, "the cat sat on the mat", 0)
    assert degeneration.longest_shared_span("nothing in common", docs).length == 0
    # a span never runs across two documents
    assert degeneration.longest_shared_span("mat today a dog", docs).length == 2


def test_longest_shared_span_finds_a_copied_passage_in_a_long_corpus():
    rng = random.Random(0)
    vocab = ["".join(rng.choice("abcdefghij") for _ in range(5)) for _ in range(500)]
    docs = [" ".join(rng.choice(vocab) for _ in range(300)) for _ in range(20)]
    copied = " ".join(docs[7].split()[40:77])
    text = " ".join(rng.choice(vocab) for _ in range(50)) + " zzzz " + copied + " zzzz"
    index = degeneration.SpanIndex(docs)
    span = index.longest(text)
    assert span.length >= 37 and span.document == 7


# --- attribution -----------------------------------------------------------------------------------

def test_classifier_separates_two_styles():
    writer = [compose(WRITER, 8, s) for s in range(30)]
    generic = [compose(GENERIC, 8, 1000 + s) for s in range(30)]
    model = attribution.fit_attributor(writer, generic, seed=0)
    assert model.cv_accuracy >= 0.95
    assert (model.oof_generic < 0.5).all()
    p = model.prob_writer([compose(WRITER, 8, 5000), compose(GENERIC, 8, 5001)])
    assert p[0] > 0.5 > p[1]


def test_classifier_cannot_separate_one_style_from_itself():
    texts = [compose(WRITER + GENERIC, 8, s) for s in range(40)]
    model = attribution.fit_attributor(texts[:20], texts[20:], seed=0)
    assert model.cv_accuracy < 0.8


def test_logistic_regression_reaches_the_class_balanced_optimum():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = (X[:, 0] + 0.5 * rng.normal(size=60) > 0.8).astype(int)  # about one in four positive
    l2 = 0.1
    lr = attribution.balanced_logistic_regression(l2, len(y)).fit(X, y)
    # gradient of the documented objective: class-balanced mean log-loss + l2 / 2 * ||coef||^2
    w = np.where(y == 1, 0.5 / (y == 1).sum(), 0.5 / (y == 0).sum())
    residual = w * (lr.predict_proba(X)[:, 1] - y)
    grad = np.append(X.T @ residual + l2 * lr.coef_[0], residual.sum())
    assert np.linalg.norm(grad) < 1e-6
    assert lr.coef_[0, 0] > abs(lr.coef_[0, 1:]).max()  # the informative feature dominates


def test_stronger_regularisation_shrinks_the_weights():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    weak = attribution.balanced_logistic_regression(1e-3, 40).fit(X, y)
    strong = attribution.balanced_logistic_regression(1.0, 40).fit(X, y)
    assert np.linalg.norm(strong.coef_) < np.linalg.norm(weak.coef_)


def test_ngrams_are_2_to_4_characters_of_the_padded_normalised_text():
    grams = set(attribution.ngram_counter().fit(["Grim  News\u2019"]).get_feature_names_out())
    assert {" g", " gri", "im n", "s' ", "' "} <= grams
    assert {len(g) for g in grams} == {2, 3, 4}
    assert not any("  " in g or g != g.lower() for g in grams)


def test_vocabulary_is_the_ngrams_in_the_most_texts():
    texts = ["grim news", "grim times", "good news", "good times"]
    counter = attribution.ngram_counter()
    counts = counter.fit_transform(texts)
    names = list(counter.get_feature_names_out()[attribution.widespread_columns(counts)])
    assert names[:2] == [" g", "s "]  # the only n-grams in all four texts, ties in alphabetical order
    assert " gri" in names and "m n" not in names  # an n-gram of a single text is dropped
    assert "m n" in set(counter.get_feature_names_out()[attribution.widespread_columns(counts[:3])])
    with pytest.raises(ValueError, match="share"):
        attribution.widespread_columns(attribution.ngram_counter().fit_transform(["ab", "cd", "ef", "gh"]))


def test_tfidf_rows_are_unit_length():
    writer = [compose(WRITER, 4, s) for s in range(6)]
    generic = [compose(GENERIC, 4, 100 + s) for s in range(6)]
    vectorizer = attribution.fit_attributor(writer, generic, seed=0).model[0]
    X = vectorizer.transform(writer + generic).toarray()
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0)
    assert vectorizer.transform([""]).sum() == 0.0


def test_attribution_is_deterministic_for_a_seed():
    writer = [compose(WRITER, 6, s) for s in range(12)]
    generic = [compose(GENERIC, 6, 100 + s) for s in range(3)]
    held = [compose(WRITER + GENERIC, 6, 500 + s) for s in range(5)]
    a, b = (attribution.fit_attributor(writer, generic, seed=3) for _ in range(2))
    assert a.folds == 3  # no more folds than the smaller side has texts
    assert (a.cv_accuracy, a.cv_log_loss, a.l2, a.max_features) == (b.cv_accuracy, b.cv_log_loss, b.l2, b.max_features)
    np.testing.assert_array_equal(a.oof_generic, b.oof_generic)
    np.testing.assert_array_equal(a.prob_writer(held), b.prob_writer(held))


def test_the_adapter_does_not_change_the_classifier_or_the_base_share():
    """Two adapters evaluated on the same inputs are judged by the same classifier: only the base model's
    replies set the passage length, so the base model's share is the same whatever the adapter wrote."""
    corpus = [compose(WRITER, 40, s) for s in range(8)]
    heldout = [compose(WRITER, 40, 100 + s) for s in range(3)]
    contrast = [compose(GENERIC, 40, 200 + s) for s in range(8)]
    base = [compose(GENERIC + WRITER[:2], 10, 300 + s) for s in range(6)]
    base_voice = [compose(GENERIC, 10, 400 + s) for s in range(6)]
    terse = [compose(WRITER, 3, 500 + s) for s in range(6)]
    wordy = [compose(WRITER, 30, 600 + s) for s in range(6)]
    lists = markers.load_markers()
    a, b = (score_style(corpus, heldout, base, adapter, contrast, lists, 0, base_voice) for adapter in (terse, wordy))
    assert a["length_words"] == b["length_words"] == max(50, int(np.median([len(t.split()) for t in base])))
    assert a["attribution"]["base_prob"] == b["attribution"]["base_prob"]
    assert a["attribution"]["cv_accuracy"] == b["attribution"]["cv_accuracy"]
    assert a["reference"] == b["reference"]
    assert a["attribution"]["adapter_prob"] != b["attribution"]["adapter_prob"]


def test_attribution_needs_two_texts_a_side():
    with pytest.raises(ValueError, match="at least 2"):
        attribution.fit_attributor(["a b c", "d e f"], ["g h i"])
    with pytest.raises(ValueError, match="empty"):
        attribution.fit_attributor(["", " "], ["", ""])


def test_each_generic_source_weighs_the_same_and_one_source_is_sklearns_balanced():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0])
    groups = np.array(["w", "w", "w", "news", "news", "news", "news", "model", "model"])
    w = attribution.balanced_weights(y, groups)
    assert w.sum() == pytest.approx(1.0)
    assert w[y == 1].sum() == pytest.approx(0.5)
    assert w[groups == "news"].sum() == pytest.approx(w[groups == "model"].sum()) == pytest.approx(0.25)
    one = attribution.balanced_weights(y, np.where(y == 1, "w", "generic"))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(y), 3))
    plain = attribution.balanced_logistic_regression(0.1, len(y)).fit(X, y)
    weighted = attribution.balanced_logistic_regression(0.1, len(y))
    weighted.set_params(class_weight=None).fit(X, y, sample_weight=one * len(y))
    np.testing.assert_allclose(weighted.predict_proba(X), plain.predict_proba(X), atol=1e-8)


def test_a_small_generic_source_is_not_outvoted_by_a_large_one():
    # The writer's style is shared by a few "model" texts; a hundred contrast texts are plainly other.
    writer = [compose(WRITER, 8, s) for s in range(40)]
    model_like = [compose(WRITER + GENERIC[:3], 8, 2000 + s) for s in range(6)]
    contrast = [compose(GENERIC, 8, 1000 + s) for s in range(100)]
    held = [compose(WRITER + GENERIC[:3], 8, 3000 + s) for s in range(6)]
    pooled = attribution.fit_attributor(writer, model_like + contrast, seed=0)
    grouped = attribution.fit_attributor(
        writer, model_like + contrast, seed=0, generic_groups=["model"] * 6 + ["contrast"] * 100
    )
    assert grouped.prob_writer(held).mean() < pooled.prob_writer(held).mean()
    with pytest.raises(ValueError, match="one group name per generic text"):
        attribution.fit_attributor(writer, contrast, generic_groups=["x"])
