/** Small pieces every page uses: links, status badges, times, durations, sizes, messages. */
import type { ComponentChildren } from "preact";

/** A link to a route of the UI (`#/...`); every segment is encoded. */
export function href(...segments: string[]): string {
  return `#/${segments.map(encodeURIComponent).join("/")}`;
}

export function Status({ status }: { status: string }) {
  return <span class={`status status-${status}`}>{status}</span>;
}

export function formatTime(ms: number | undefined): string {
  if (ms === undefined) return "";
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** Duration from start to end, or to now with `…` while it runs. */
export function elapsed(start: number, end: number | undefined): string {
  return end === undefined ? `${formatDuration(Date.now() - start)}…` : formatDuration(end - start);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(1)} GB`;
}

export function Problem({ children }: { children: ComponentChildren }) {
  return (
    <div class="problem" role="alert">
      {children}
    </div>
  );
}

export function Loading() {
  return <div class="muted">Loading…</div>;
}

export function Crumbs({ parts }: { parts: [string, string | undefined][] }) {
  return (
    <nav class="crumbs">
      <a href="#/">Flows</a>
      {parts.map(([label, link]) => (
        <>
          <span class="sep">/</span>
          {link ? <a href={link}>{label}</a> : <span>{label}</span>}
        </>
      ))}
    </nav>
  );
}

export function Tag({ tag, system }: { tag: string; system?: boolean }) {
  return <span class={system ? "tag tag-system" : "tag"}>{tag}</span>;
}
