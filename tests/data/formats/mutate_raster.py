#!/usr/bin/env python3
"""Mutation differential: random byte edits, deletions, insertions and cuts
of the unit-test vectors of tests/data/formats/FMT/ (PNG: CRCs mostly fixed
up after the edit), each compared with Pillow 13.0.0: both must refuse, or
both decode to the same .rle (both modes). Prints the counts and up to six
examples of each kind of disagreement.

usage: mutate_raster.py png|pnm|gif COUNT RLEWATCH
"""
import sys, os, io, random, subprocess, glob, shutil, collections, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_raster import reference
import warnings; warnings.simplefilter('ignore')
fmt=sys.argv[1]; n=int(sys.argv[2]); binary=sys.argv[3]
rng=random.Random(5)
here=os.path.dirname(os.path.abspath(__file__))
seeds=[open(f,'rb').read() for f in sorted(glob.glob(f'{here}/{fmt}/*')) if not f.endswith(('.rle','.md'))]
root=tempfile.mkdtemp(prefix='mutate-'); os.makedirs(root+'/in'); os.makedirs(root+'/out')
cases=[]
for i in range(n):
    d=bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1,4)):
        k=rng.random()
        p=rng.randrange(len(d))
        if k<0.5: d[p]=rng.randrange(256)
        elif k<0.7: d[p]^=1<<rng.randrange(8)
        elif k<0.85: del d[p:p+rng.randint(1,8)]
        else: d[p:p]=bytes(rng.randrange(256) for _ in range(rng.randint(1,4)))
    if rng.random()<0.2: d=d[:rng.randrange(len(d))]
    d=bytes(d)
    if fmt=='png' and rng.random()<0.8:
        import struct, zlib
        b=bytearray(d); p=8
        while p+12<=len(b):
            l=struct.unpack('>I',b[p:p+4])[0]
            if p+12+l>len(b): break
            b[p+8+l:p+12+l]=struct.pack('>I',zlib.crc32(bytes(b[p+4:p+8+l]))&0xffffffff); p+=12+l
        d=bytes(b)
    try: want=(reference(d,True),reference(d,False)); werr=None
    except Exception as e: want=None; werr=f"{type(e).__name__}: {str(e)[:60]}"
    name=f"m{i}.{ 'png' if fmt=='png' else 'gif' if fmt=='gif' else 'pnm'}"
    open(f"{root}/in/{name}",'wb').write(d); cases.append((name,want,werr))
res=collections.Counter(); shown=collections.Counter()
for k,flags in ((0,[]),(1,['--threshold'])):
    p=subprocess.run([binary,'compress','-o',root+'/out/']+flags+[f"{root}/in/{c[0]}" for c in cases],capture_output=True,text=True)
    errs={}
    for line in p.stderr.splitlines():
        if line.startswith('rlewatch: '):
            nm=line.split(': ')[1].rsplit('/',1)[-1]; errs[nm]=line.split(': ',2)[-1]
    for name,want,werr in cases:
        out=f"{root}/out/{name.rsplit('.',1)[0]}.rle"
        got=open(out,'rb').read() if os.path.exists(out) else None
        if got is not None: os.remove(out)
        if want is None and got is None: res['both fail']+=1
        elif want is not None and got == want[k]: res['same']+=1
        elif want is None: res['pillow fails, we decode']+=1; key='pf'
        elif got is None: res['we fail, pillow decodes']+=1; key='wf'
        else: res['differ']+=1; key='df'
        if not (want is None and got is None) and not (want is not None and got==want[k]) and k==0:
            shown[key]+=1
            if shown[key]<=6: print(key, name, '| pil:', werr, '| we:', errs.get(name))
print(fmt, dict(res))
shutil.rmtree(root)
sys.exit(1 if sum(v for k, v in res.items() if k not in ('same', 'both fail')) else 0)
