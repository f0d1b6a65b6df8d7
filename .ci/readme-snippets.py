#!/usr/bin/env python3
"""Extracts the README's C# code blocks into a project that references the packages (issue 12).

Every ```csharp block is compiled, except one preceded by `<!-- snippet: NAME partial (why) -->`, which is skipped and
reported by NAME. A block that declares types becomes its own file; a block of statements becomes the program
(top-level statements; at most one such block). Usage: readme-snippets.py README.md OUTDIR -> prints what it did."""
import re, sys, pathlib

readme, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
text = readme.read_text()
blocks = list(re.finditer(r'(?:<!-- snippet: (\S+)( partial)?[^>]*-->\n)?```csharp\n(.*?)```', text, re.S))
program = None
compiled, skipped = [], []
for i, m in enumerate(blocks, 1):
    name = m.group(1) or f'block{i}'
    line = text[:m.start()].count('\n') + 1
    if m.group(2):
        skipped.append(f'{name} (README.md:{line})')
        continue
    body = m.group(3)
    declares = re.search(r'^\s*(\[[A-Za-z]|(public |internal |static |partial |sealed |abstract )*(class|struct|record|interface|enum) )', body, re.M)
    if declares:
        (out / f'Snippet{i}.cs').write_text(f'// README.md:{line}\n' + body)
    else:
        if program is not None:
            sys.exit(f'readme-snippets: two statement blocks ({program} and README.md:{line}); mark one partial')
        program = f'README.md:{line}'
        (out / 'Program.cs').write_text(f'// README.md:{line}\n' + body)
    compiled.append(f'{name} (README.md:{line})')
if program is None:
    (out / 'Program.cs').write_text('return;\n')
print('compiled: ' + ', '.join(compiled))
print('skipped (partial): ' + (', '.join(skipped) or 'none'))
