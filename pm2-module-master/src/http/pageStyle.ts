/** The status page's stylesheet (inlined; its hash goes into the page's Content-Security-Policy). */
export const PAGE_STYLE = `
:root {
  color-scheme: dark;
  --bg: #0e1116; --panel: #161b22; --line: #2a313c; --text: #d6dde6; --muted: #8b95a5;
  --idle: #5c6675; --waiting: #d4a72c; --identifying: #3b82f6; --resuming: #a371f7;
  --ready: #2ea043; --disconnected: #e5484d; --fenced: #f0883e; --unknown: #262c35;
  --cell: 12px;
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.75rem; padding: .75rem 1.25rem;
  background: var(--panel); border-bottom: 1px solid var(--line); }
h1 { margin: 0; font-size: 1.15rem; letter-spacing: .02em; }
h2 { margin: 0 0 .6rem; font-size: .95rem; font-weight: 600; }
h2 small { color: var(--muted); font-weight: 400; margin-left: .5rem; }
.facts { display: flex; flex-wrap: wrap; gap: .35rem 1.5rem; margin: 0; }
.facts div { display: flex; flex-direction: column; }
.facts dt { color: var(--muted); font-size: .72rem; text-transform: uppercase; letter-spacing: .05em; }
.facts dd { margin: 0; font-weight: 600; font-variant-numeric: tabular-nums; }
#live { margin-left: auto; font-size: .8rem; padding: .15rem .6rem; border-radius: 999px; border: 1px solid var(--line); }
#live.on { color: var(--ready); border-color: var(--ready); }
#live.off { color: var(--waiting); border-color: var(--waiting); }
#reshard, #resplit { padding: .7rem 1.25rem; background: #16325c; border-bottom: 1px solid var(--line); color: #fff; font-weight: 600; }
#banner { padding: .7rem 1.25rem; background: #5c1619; border-bottom: 1px solid var(--disconnected); color: #fff; font-weight: 600; }
#notice { padding: .7rem 1.25rem; background: #3d2e05; border-bottom: 1px solid var(--waiting); }
main { padding: 1rem 1.25rem; display: grid; gap: 1rem; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; min-width: 0; }
.bar { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: baseline; gap: .5rem 1rem; }
.legend { display: flex; flex-wrap: wrap; gap: .25rem 1rem; list-style: none; margin: 0 0 .6rem; padding: 0; font-size: .82rem; }
.legend li { display: flex; align-items: center; gap: .35rem; }
.legend b { font-variant-numeric: tabular-nums; }
.swatch { width: 11px; height: 11px; border-radius: 2px; display: inline-block; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, var(--cell)); gap: 2px; }
.cell { width: var(--cell); height: var(--cell); border-radius: 2px; }
[data-state=unknown] { background: var(--unknown); }
[data-state=idle] { background: var(--idle); }
[data-state=waiting] { background: var(--waiting); }
[data-state=identifying] { background: var(--identifying); }
[data-state=resuming] { background: var(--resuming); }
[data-state=ready] { background: var(--ready); }
[data-state=disconnected] { background: var(--disconnected); }
[data-state=fenced] { background: var(--fenced); }
.cell.found { outline: 2px solid #fff; outline-offset: 1px; }
form { display: flex; gap: .5rem; }
input { flex: 0 1 22rem; background: var(--bg); color: var(--text); border: 1px solid var(--line); border-radius: 4px; padding: .35rem .6rem; font: inherit; }
button { background: #238636; color: #fff; border: 0; border-radius: 4px; padding: .35rem .9rem; font: inherit; cursor: pointer; }
#which-result { margin: .6rem 0 0; min-height: 1.4em; font-variant-numeric: tabular-nums; }
#which-result.error { color: var(--disconnected); }
.tables { display: grid; grid-template-columns: auto minmax(0, 1fr); gap: 1rem; align-items: start; }
@media (max-width: 1100px) { .tables { grid-template-columns: minmax(0, 1fr); } }
.scroll { max-height: 26rem; overflow: auto; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; font-variant-numeric: tabular-nums; }
th { position: sticky; top: 0; background: var(--panel); color: var(--muted); font-weight: 500; text-align: left; }
th, td { padding: .25rem .55rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
.num { text-align: right; }
.pill { padding: 0 .45rem; border-radius: 999px; font-size: .78rem; border: 1px solid currentColor; }
.pill.good { color: var(--ready); } .pill.bad { color: var(--disconnected); } .pill.meh { color: var(--waiting); }
footer { padding: 0 1.25rem 1rem; color: var(--muted); font-size: .8rem; }
footer a { color: var(--muted); }
`;
