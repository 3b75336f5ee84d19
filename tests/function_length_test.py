#!/usr/bin/env python3
"""Fails when a function in src/ or apps/ is longer than LIMIT lines without a reason.

A reader should be able to hold a function in mind: about 80 lines. A longer one needs a comment
`// long: <why>` on one of the three lines above its signature (a declaration table, say).
Works on clang-formatted code (scripts/format.sh): a definition is a signature ending in `{`
whose body closes with `}` at the signature's indentation.
Usage: function_length_test.py [--limit N] [ROOT]   (ROOT: the checkout, default: this one)
"""
import argparse
import pathlib
import re
import sys

NOT_A_FUNCTION = re.compile(
    r'^(namespace|struct|class|enum|union|if|for|while|switch|else|do|try|catch|return|case|'
    r'extern)\b|^[}\[]|=\s*[\[{(]|^\w+\s*=')


def indentation(line):
    return len(line) - len(line.lstrip(' '))


def signature_start(lines, i):
    """The first line of the statement that ends at line i (a signature may wrap)."""
    j, sig = i, lines[i].strip()
    while j > 0 and (sig.count(')') > sig.count('(') or sig.startswith(':') or
                     lines[j - 1].rstrip().endswith((',', '('))):
        j -= 1
        sig = lines[j].strip() + ' ' + sig
    return j, sig


def body_end(lines, start, indent):
    closing = ' ' * indent + '}'
    for k in range(start + 1, len(lines)):
        if lines[k].startswith(closing) and indentation(lines[k]) == indent:
            return k
    return None


def long_functions(path, limit):
    lines = path.read_text(encoding='utf-8').split('\n')
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if s.endswith('{') and not s.startswith(('//', '#')):
            j, sig = signature_start(lines, i)
            if '(' in sig and ')' in sig and not NOT_A_FUNCTION.search(sig):
                end = body_end(lines, i, indentation(lines[j]))
                if end is not None:
                    n = end - j + 1
                    reason = any('// long:' in lines[k] for k in range(max(0, j - 3), j))
                    if n > limit and not reason:
                        yield f'{path}:{j + 1}: {n} lines: {sig[:100]}'
                    i = end
        i += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--limit', type=int, default=80)
    parser.add_argument('root', nargs='?', default=pathlib.Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    root = pathlib.Path(args.root)
    files = sorted(p for d in ('src', 'apps') for p in (root / d).rglob('*') if p.suffix in ('.cpp', '.h'))
    found = [f for p in files for f in long_functions(p, args.limit)]
    for f in found:
        print(f)
    if found:
        print(f'{len(found)} functions over {args.limit} lines: split them into named steps, or say '
              f'why above the signature (// long: …)')
        return 1
    print(f'function length: all {len(files)} files within {args.limit} lines a function')
    return 0


if __name__ == '__main__':
    sys.exit(main())
