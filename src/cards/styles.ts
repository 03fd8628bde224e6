/** The stylesheet inlined into every card. */
export const CARD_CSS = `
:root{color-scheme:light;--fg:#1d2330;--muted:#5f6b7a;--line:#dde2ea;--bg:#fff;--panel:#f6f8fb;--accent:#2f6fde;--ok:#1f8a4c;--bad:#c62f2f;--run:#d98a00}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.mf-card{max-width:1100px;margin:0 auto;padding:20px 24px 40px}
.mf-card-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 16px;border-bottom:1px solid var(--line);margin-bottom:16px;padding-bottom:8px}
.mf-card-head h1{font-size:18px;margin:0}
.mf-card-head .mf-muted{font-size:12px}
.mf-muted{color:var(--muted)}
.mf-section{margin:18px 0}
.mf-section>h2{font-size:15px;margin:0 0 8px;color:var(--fg)}
.mf-component{margin:10px 0}
.mf-markdown h1{font-size:22px}.mf-markdown h2{font-size:18px}.mf-markdown h3{font-size:16px}
.mf-markdown code{background:var(--panel);padding:1px 4px;border-radius:3px}
.mf-markdown pre{background:var(--panel);padding:8px;overflow:auto}
.mf-pre{margin:0;background:var(--panel);padding:8px 10px;border-radius:4px;overflow:auto;max-height:420px;font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-word}
.mf-table-wrap{overflow:auto}
.mf-table{border-collapse:collapse;font-size:13px}
.mf-table th,.mf-table td{border:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
.mf-table th{background:var(--panel);font-weight:600}
.mf-table .mf-markdown>:first-child{margin-top:0}.mf-table .mf-markdown>:last-child{margin-bottom:0}
.mf-table .mf-pre{max-height:160px;background:transparent;padding:0}
.mf-note{color:var(--muted);font-size:12px;margin-top:4px}
.mf-image{margin:0}.mf-image img{max-width:100%;height:auto}
.mf-image figcaption{color:var(--muted);font-size:12px}
.mf-vega{min-height:20px}
.mf-progress{display:flex;align-items:center;gap:10px}
.mf-progress-track{flex:1;max-width:480px;height:12px;background:var(--panel);border:1px solid var(--line);border-radius:6px;overflow:hidden}
.mf-progress-fill{height:100%;background:var(--accent)}
.mf-progress-count{font-variant-numeric:tabular-nums;color:var(--muted);font-size:12px}
.mf-error{border:1px solid #f0b4b4;background:#fff4f4;border-radius:4px;padding:8px 10px}
.mf-error-title{font-weight:600;color:var(--bad)}
.mf-error-stack{background:transparent;padding:4px 0 0;max-height:200px}
.mf-artifact-head{font-size:13px;margin-bottom:2px}.mf-artifact-name{font-weight:600}
.mf-type{color:var(--muted);font-size:12px}
.mf-kv{border-collapse:collapse;font-size:13px}.mf-kv th{text-align:left;color:var(--muted);font-weight:500;padding:2px 16px 2px 0;vertical-align:top}.mf-kv td{padding:2px 0}
.mf-status-completed{color:var(--ok)}.mf-status-failed{color:var(--bad)}.mf-status-running{color:var(--run)}
.mf-graph svg{max-width:100%;height:auto}
.mf-graph rect{fill:#fff;stroke:#9aa5b5;stroke-width:1.2}
.mf-graph .mf-node-current rect{fill:#e7efff;stroke:var(--accent);stroke-width:2.5}
.mf-graph text{font:12px system-ui,sans-serif;fill:var(--fg)}
.mf-graph path{fill:none;stroke:#9aa5b5;stroke-width:1.3}
.mf-graph path.mf-back{stroke-dasharray:4 3}
`;
