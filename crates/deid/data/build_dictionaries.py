#!/usr/bin/env python3
"""Rebuild the dictionaries in this folder from openly licensed upstream packages.

Nothing here runs at build or run time: the Rust crate embeds the resulting
text files with include_str!. Run it by hand when the sources change:

    mkdir -p /tmp/deid-src && cd /tmp/deid-src
    pip download --no-deps --no-binary :all: names==0.3.0 -d .   # US Census 1990 name lists
    pip download --no-deps zipcodes==3.0.0 -d .                    # US ZIP code places
    npm pack @faker-js/faker@10.6.0                                # street suffixes, extra names
    apt-get download wamerican                                     # SCOWL English word list
    apt-get download wamerican-huge                                # SCOWL's larger list (rare and clinical words)
    python3 /path/to/crates/deid/data/build_dictionaries.py /tmp/deid-src

It needs python3, node (to read faker's ES module), tar, unzip and dpkg-deb.
The evaluation corpus is deliberately NOT an input: it is the test set.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile

SRC = sys.argv[1] if len(sys.argv) > 1 else "/tmp/deid-src"
OUT = os.path.dirname(os.path.abspath(__file__))
WORD = re.compile(r"^[A-Z][A-Z'\-]*$")


def write_ranked(name, ranks, header):
    """`NAME RANK` lines: the engine trusts a name alone only when common."""
    with open(os.path.join(OUT, name), "w", encoding="ascii") as f:
        f.write(f"# {header}\n")
        for e in sorted(ranks):
            f.write(f"{e} {ranks[e]}\n")
    print(f"{name}: {len(ranks)} entries")


def ranked(pairs, extra):
    """Best (lowest) census rank per upper-case name; faker-only names get rank 1."""
    ranks = {}
    for n, r in pairs:
        n = n.upper()
        if WORD.match(n) and len(n) >= 2:
            ranks[n] = min(r, ranks.get(n, r))
    for n in extra:
        n = n.upper()
        if WORD.match(n) and len(n) >= 2:
            ranks[n] = 1
    return ranks


def write(name, entries, header):
    entries = sorted(set(entries))
    with open(os.path.join(OUT, name), "w", encoding="ascii") as f:
        f.write(f"# {header}\n")
        for e in entries:
            f.write(e + "\n")
    print(f"{name}: {len(entries)} entries")


def census():
    """US Census 1990 frequency lists (public domain), as shipped by PyPI `names`."""
    tar = tarfile.open(glob.glob(os.path.join(SRC, "names-*.tar.gz"))[0])
    out = {}
    for member in tar.getmembers():
        base = os.path.basename(member.name)
        if base.startswith("dist."):
            text = tar.extractfile(member).read().decode("ascii")
            # name, frequency %, cumulative %, rank: keep name and rank.
            out[base] = [(l.split()[0], int(l.split()[3])) for l in text.splitlines() if l.strip()]
    return out


def faker():
    """faker-js en locale (MIT): first/last names and street suffixes."""
    tgz = glob.glob(os.path.join(SRC, "faker-js-faker-*.tgz"))[0]
    dest = os.path.join(SRC, "faker-unpacked")
    os.makedirs(dest, exist_ok=True)
    tarfile.open(tgz).extractall(dest)
    module = os.path.join(dest, "package", "dist", "locale", "en.js")
    script = (
        f"import('{module}').then(m=>{{const d=m.faker.rawDefinitions;"
        "console.log(JSON.stringify({first:d.person.first_name.generic,"
        "last:d.person.last_name.generic,suffix:d.location.street_suffix}))})"
    )
    return json.loads(subprocess.check_output(["node", "-e", script]))


def zip_places():
    """City, alias and county names from PyPI `zipcodes` (MIT; USPS/GeoNames data)."""
    whl = glob.glob(os.path.join(SRC, "zipcodes-*.whl"))[0]
    dest = os.path.join(SRC, "zipcodes-unpacked")
    zipfile.ZipFile(whl).extractall(dest)
    sys.path.insert(0, dest)
    import zipcodes  # noqa: E402

    places = set()
    for z in zipcodes.list_all():
        for city in [z["city"], *z.get("acceptable_cities", [])]:
            places.add(city.upper())
        county = z.get("county") or ""
        county = re.sub(r"\s+(County|Parish|Borough|Census Area|Municipality|city)$", "", county)
        if county:
            places.add(county.upper())
    return places


def scowl_lower(package, dict_file, min_len):
    """Upper-cased lower-case entries of a Debian SCOWL word-list package.

    Capitalised entries are proper nouns (names, places): those are exactly
    what must NOT make a token look harmless, so they are left out.
    """
    deb = glob.glob(os.path.join(SRC, f"{package}_*.deb"))[0]
    dest = os.path.join(SRC, f"{package}-unpacked")
    subprocess.check_call(["dpkg-deb", "-x", deb, dest])
    with open(os.path.join(dest, "usr/share/dict", dict_file), encoding="utf-8") as f:
        return {w.upper() for w in (line.strip() for line in f) if re.fullmatch(rf"[a-z]{{{min_len},}}", w)}


def english():
    """Lower-case entries of Debian's wamerican (SCOWL; permissive licence)."""
    return scowl_lower("wamerican", "american-english", 2)


def english_rare(common, names):
    """Lower-case words of wamerican-huge that are in no other list.

    The larger SCOWL list knows clinical vocabulary ("mediastinal",
    "auscultation", "ostomy") that the common list lacks; without it such a
    word looks like an unknown surname after "per" or "seen by". Words that
    are also names or places are left out, so only words in no other list
    change their standing, and short ones (under four letters) too, being
    mostly abbreviations notes use for something else.
    """
    return scowl_lower("wamerican-huge", "american-english-huge", 4) - common - names


def main():
    c = census()
    fk = faker()
    first = ranked(c["dist.female.first"] + c["dist.male.first"], fk["first"])
    last = ranked(c["dist.all.last"], fk["last"])
    places = {p for p in zip_places() if re.fullmatch(r"[A-Z][A-Z .'\-]+", p) and len(p) >= 3}
    # "ST" abbreviations stay as written; the engine matches "SAINT" and "ST" both.
    common = english()
    suffixes = {s.upper() for s in fk["suffix"]}
    write_ranked("first_names.txt", first, "NAME RANK: US Census 1990 first names (rank in its list) + faker-js en first names (rank 1); see SOURCES.md")
    write_ranked("last_names.txt", last, "NAME RANK: US Census 1990 surnames (rank in its list) + faker-js en last names (rank 1); see SOURCES.md")
    write("places.txt", places, "US city, alias and county names from PyPI zipcodes (see SOURCES.md)")
    write("english_words.txt", common, "lower-case words of Debian wamerican / SCOWL, upper-cased (see SOURCES.md)")
    rare = english_rare(common, set(first) | set(last) | places)
    write("english_words_rare.txt", rare, "lower-case words of Debian wamerican-huge / SCOWL in no other list, upper-cased (see SOURCES.md)")
    write("street_suffixes.txt", suffixes, "street suffixes from faker-js en (see SOURCES.md)")


if __name__ == "__main__":
    main()
