#!/usr/bin/env python3
"""Regenerates the tokenizer fixtures under Tests/Fixtures/tokenizer/ from the reference libraries.

Run with the reference environment:  ../venv/bin/python Tests/Fixtures/generate_tokenizer.py

Everything expected by Tests/TokenizersTests comes from here; nothing is hand-typed in the tests.

* GPT-NeoX-20B BPE (HF `tokenizers`, `../shared/tokenizer/20B_tokenizer.json`):
  - stress.json: hand-written stress strings (described as lists of [piece, repeat] parts so the huge
    ones stay small on disk) with their full HF ids and HF decode (skip_special_tokens=False).
  - corpus_<name>.json: for every document of minipile train/val and every line of LAMBADA test,
    the id count, SHA-256 of the ids as little-endian int32, and SHA-256 of the UTF-8 HF decode;
    plus the full id lists of the first few documents.
* SentencePiece (`sentencepiece` PyPI): trains a small model (spm_small.model) on the first LAMBADA
  lines + the stress strings and records its ids/decodes for stress strings and LAMBADA lines.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
OUT = os.path.join(HERE, "tokenizer")
TOKENIZER = os.path.join(SHARED, "tokenizer", "20B_tokenizer.json")


def stress_cases():
    """(name, parts) where text = ''.join(piece * repeat for piece, repeat in parts)."""
    one = lambda name, s: (name, [[s, 1]])
    cases = [
        one("empty", ""),
        one("single_space", " "),
        one("plain", "Hello world, this is a test."),
        one("leading_trailing_spaces", "   leading and trailing   "),
        one("whitespace_kinds", "a\tb\nc\rd\x0be\x0cf\x85g\u00a0h\u1680i\u2000j\u2005k\u200al\u2028m\u2029n\u202fo\u205fp\u3000q"),
        one("whitespace_runs", "a  b   c    d\t\te\n\nf \n g\t \t h  \n\n  i   "),
        one("newline_runs", "\n\n\n  \n"),
        one("crlf", "line one\r\nline two\r\n\r\nline three\r\n"),
        one("tabs", "\tdef f(x):\n\t\treturn x\t# comment\t\t\n"),
        one("spaces_before_newline", "x   \ny    \n\n   z"),
        one("contractions_lower", "it's don't we're they've I'm we'll he'd 's 't 're 've 'm 'll 'd"),
        one("contractions_upper", "IT'S DON'T WE'RE THEY'VE I'M WE'LL HE'D 'S 'T 'RE 'VE 'M 'LL 'D I'LL"),
        one("contractions_mixed", "'sa 'tt 'res ''s x''ll !'s ' s '' ''' 're're"),
        one("digits", "0 1 12 123 1234 12345 3.14159 1,000,000 2024-01-01 +44 (0)20 7946 0958 \u0663\u0664 \u00b2\u00bd \u2167"),
        one("punctuation_runs", "!!! ??? ... --- *** ### $$$ %%% &&& ((())) [[]] {{}} <<>> ::: ;;; ,,, ``` ~~~ ^^^ @@@ \\\\ //"),
        one("code", "for (int i = 0; i < n; ++i) { a[i] += b[i] * 2; }\nif x != y && !z: print(f'{x!r}')\n"),
        one("emoji", "I \u2764\ufe0f NY \U0001f600\U0001f601 \U0001f44d\U0001f3fd \U0001f1fa\U0001f1f8 \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 end"),
        one("combining_nfc", "e\u0301 a\u0300 o\u0308 n\u0303 caf\u0065\u0301 A\u030a \u212b \u2126 Cafe\u0301s"),
        one("combining_order", "a\u0316\u0301 a\u0301\u0316 q\u0307\u0323 \u1e0b\u0323 d\u0323\u0307 e\u0301\u0301\u0301"),
        one("hangul", "\u1100\u1161\u11a8 \uac00\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af \ud55c\uad6d\uc5b4"),
        one("composition_exclusions", "\u0958 \u0915\u093c \u2add\u0338 \u0344 \u0f73 \u1f71 \u00c5"),
        one("cjk", "\u6f22\u5b57\u3068\u4eee\u540d\u3068\u30ab\u30bf\u30ab\u30ca\u3002\u4e2d\u6587\u6d4b\u8bd5\uff0c\u6211\u7231\u5317\u4eac\u5929\u5b89\u95e8\uff01"),
        one("arabic", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 \u0661\u0662\u0663 \u0627\u0644\u0633\u0651\u064e\u0644\u0627\u0645"),
        one("hebrew", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd \u05d1\u05bc\u05b0\u05e8\u05b5\u05d0\u05e9\u05b4\u05c1\u05d9\u05ea"),
        one("mixed_scripts", "English \u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u0939\u093f\u0928\u094d\u0926\u0940 \u0e44\u0e17\u0e22 \u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8"),
        one("control_chars", "a\x00b\x01c\x07d\x1be\x1cf\x1fg\x7fh\u0080i\u009fj"),
        one("zero_width", "a\u200bb\u200cc\u200dd\u2060e\ufefff\u00adg\u200eh\u200fi"),
        one("nbsp", "100\u00a0km and\u00a0\u00a0two \u202fnarrow"),
        one("special_inside", "a<|endoftext|>b"),
        one("special_alone", "<|endoftext|>"),
        one("padding_alone", "<|padding|>"),
        one("specials_mixed", " <|endoftext|> hello<|padding|><|endoftext|>\n<|endoftext|>  x <|endoftext"),
        one("special_partial", "<|endof <|padding| |endoftext|> <||>"),
        one("spaces_around_special", "   <|endoftext|>   z"),
        one("combining_after_special", "<|endoftext|>\u0301x"),
        one("private_use_and_unassigned", "\ue000\uf8ff\U000f0000 \U0010ffff"),
        one("surrogate_free_supplementary", "\U0001d400\U0001d41a \U00020000\U0002a6d6 \U0001f9d1\u200d\U0001f4bb"),
        one("math_letters_numbers", "x\u00b2+y\u00b2=z\u00b2 \u2160\u2161\u2162 \u00bc\u00bd \u2070\u2074"),
        one("apostrophe_variants", "it\u2019s it`s it\u00b4s it''s \u02bcs"),
        one("only_punct", "?!"),
        one("trailing_newline", "end\n"),
        ("long_word_10k", [["abcdefghij", 1000]]),
        ("long_letter_run_10k", [["a", 10000]]),
        ("long_digit_run_10k", [["7", 10000]]),
        ("long_punct_run_10k", [["!?", 5000]]),
        ("long_cjk_10k", [["\u6f22\u5b57", 5000]]),
        ("long_spaces_100k", [[" ", 100000]]),
        ("long_spaces_then_word", [["x", 1], [" ", 100001], ["y", 1]]),
        ("long_newlines_100k", [["\n", 100000]]),
        ("long_mixed_ws_100k", [[" \t", 50000], ["z", 1]]),
        ("many_words", [["the quick brown fox jumps over the lazy dog. ", 300]]),
    ]
    return cases


def text_of(parts):
    return "".join(piece * count for piece, count in parts)


def id_hash(ids):
    return hashlib.sha256(struct.pack("<%di" % len(ids), *ids)).hexdigest()


def text_hash(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_jsonl_zst(path):
    raw = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
    return [json.loads(line)["text"] for line in raw.decode("utf-8").splitlines() if line.strip()]


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def write_json(name, obj):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    print("wrote", path, os.path.getsize(path), "bytes")


def bpe_fixtures():
    from tokenizers import Tokenizer
    import tokenizers

    tok = Tokenizer.from_file(TOKENIZER)
    cases = []
    for name, parts in stress_cases():
        text = text_of(parts)
        enc = tok.encode(text)
        plain = tok.encode(text, add_special_tokens=False)
        assert enc.ids == plain.ids, "20B post-processor unexpectedly adds tokens"
        decoded = tok.decode(enc.ids, skip_special_tokens=False)
        case = {"name": name, "parts": parts}
        if len(enc.ids) <= 5000:
            case["ids"] = enc.ids
        else:  # keep the fixture small: count, hash and the first ids
            case.update(ids_count=len(enc.ids), ids_sha256=id_hash(enc.ids), ids_head=enc.ids[:100])
        if decoded != text:
            case["decoded"] = decoded
        cases.append(case)
    write_json("stress.json", {
        "tokenizer": "20B_tokenizer.json",
        "tokenizers_version": tokenizers.__version__,
        "vocabulary_size": tok.get_vocab_size(with_added_tokens=True),
        "cases": cases,
    })

    corpora = [
        ("minipile_train", "data/minipile/train.jsonl.zst", read_jsonl_zst),
        ("minipile_val", "data/minipile/val.jsonl.zst", read_jsonl_zst),
        ("lambada_test", "data/lambada/lambada_test.jsonl", read_jsonl),
    ]
    for name, rel, reader in corpora:
        texts = reader(os.path.join(SHARED, rel))
        encs = tok.encode_batch(texts)
        docs = []
        full = []
        decode_differs = []
        for i, (text, enc) in enumerate(zip(texts, encs)):
            ids = enc.ids
            decoded = tok.decode(ids, skip_special_tokens=False)
            docs.append([len(ids), id_hash(ids)[:16]])
            if decoded != text:
                decode_differs.append([i, text_hash(decoded)[:16]])
            if i < 3:
                full.append({"index": i, "ids": ids})
        write_json("corpus_%s.json" % name, {
            "source": rel,
            "tokenizers_version": tokenizers.__version__,
            "documents_format": "[id count, first 16 hex digits of sha256 of the ids as little-endian int32]",
            "texts_sha256": hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest(),
            "decode_differs_format": "[index, first 16 hex digits of sha256 of HF decode] where decode != text",
            "decode_differs": decode_differs,
            "documents": docs,
            "full": full,
        })


NORMALIZATION_SUFFIXES = ["", "\u0301", "\u0316\u0301", "\u11a8", "\u0334\u0323"]


def normalization_fixtures():
    """HF's Unicode normalizers on every BMP scalar >= U+0080 (alone, with combining marks after it,
    after a combining mark, and before a Hangul trailing jamo). The strings are generated the same
    way by the Swift test; per block of 256 code points we record the SHA-256 of the normalized
    strings joined by U+0000.

    Code points are skipped (and listed) where comparing is meaningless: unassigned in Python's
    Unicode database, or where HF's own (older) Unicode tables disagree with that standard, e.g.
    marks added after HF's tables were built, which HF treats as starters (ccc 0)."""
    import unicodedata
    from tokenizers import normalizers
    forms = {"NFC": normalizers.NFC(), "NFD": normalizers.NFD(), "NFKC": normalizers.NFKC(), "NFKD": normalizers.NFKD()}
    result = {}
    skipped = {}
    for name, normalizer in forms.items():
        blocks = []
        skip = []
        for block in range(0, 0x10000, 256):
            outs = []
            for c in range(max(block, 0x80), block + 256):
                if 0xD800 <= c < 0xE000:
                    continue
                inputs = [chr(c) + suffix for suffix in NORMALIZATION_SUFFIXES] + ["\u0301" + chr(c)]
                hf = [normalizer.normalize_str(t) for t in inputs]
                std = [unicodedata.normalize(name, t) for t in inputs]
                if unicodedata.category(chr(c)) == "Cn" or hf != std:
                    skip.append(c)
                    continue
                outs.extend(hf)
            blocks.append(text_hash("\x00".join(outs))[:16] if outs else "")
        result[name] = blocks
        skipped[name] = skip
    write_json("normalization.json", {
        "unicode_version_of_python": unicodedata.unidata_version,
        "suffixes": NORMALIZATION_SUFFIXES,
        "block_sha256_16": result,
        "skipped_code_points": skipped,
    })


def spm_fixtures():
    import sentencepiece as spm

    lambada = read_jsonl(os.path.join(SHARED, "data/lambada/lambada_test.jsonl"))
    train_path = os.path.join(OUT, "_spm_train.txt")
    with open(train_path, "w", encoding="utf-8") as f:
        for line in lambada[:3000]:
            f.write(line.replace("\n", " ") + "\n")
        for name, parts in stress_cases():
            text = text_of(parts)
            if len(text) < 2000:
                f.write(text.replace("\n", " ").replace("\r", " ") + "\n")
    prefix = os.path.join(OUT, "spm_small")
    spm.SentencePieceTrainer.train(
        input=train_path, model_prefix=prefix, vocab_size=1000, model_type="bpe",
        byte_fallback=True, character_coverage=0.9995, normalization_rule_name="identity",
        num_threads=1, seed_sentencepiece_size=100000, input_sentence_size=0,
        bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2)
    os.remove(train_path)
    os.remove(prefix + ".vocab")
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    cases = []
    for name, parts in stress_cases():
        text = text_of(parts)
        if len(text) > 2000:
            continue
        ids = sp.encode(text)
        case = {"name": name, "parts": parts, "ids": ids}
        if sp.decode(ids) != text:
            case["decoded"] = sp.decode(ids)
        cases.append(case)
    lines = []
    for i, line in enumerate(lambada[:200]):
        ids = sp.encode(line)
        lines.append({"lambada_index": i, "ids": ids, "decode_equals_text": sp.decode(ids) == line})
    write_json("spm_small.json", {
        "model": "spm_small.model",
        "sentencepiece_version": spm.__version__,
        "vocabulary_size": sp.get_piece_size(),
        "cases": cases,
        "lambada": lines,
    })
    print("spm model size", os.path.getsize(prefix + ".model"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    what = sys.argv[1:] or ["bpe", "norm", "spm"]
    if "norm" in what:
        normalization_fixtures()
    if "bpe" in what:
        bpe_fixtures()
    if "spm" in what:
        spm_fixtures()
