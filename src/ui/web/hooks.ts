/** Hooks of the UI: the hash route, and data that reloads while something runs. */
import { useEffect, useRef, useState } from "preact/hooks";
import { fetchJson } from "./api.js";

/** The part of the URL after `#`, kept in state. */
export function useHashRoute(): string {
  const [hash, setHash] = useState(location.hash.slice(1) || "/");
  useEffect(() => {
    const on = () => setHash(location.hash.slice(1) || "/");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

/** What `usePolled` returns. */
export interface Polled<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

/**
 * Loads `url`, and loads it again every `everyMs` while `live(data)` says so (a run or task
 * still running); stops when the component goes away.
 */
export function usePolled<T>(url: string, live: (data: T) => boolean, everyMs = 1000): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const liveRef = useRef(live);
  liveRef.current = live;
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        const d = await fetchJson<T>(url);
        if (stopped) return;
        setData(d);
        setError(undefined);
        if (liveRef.current(d)) timer = setTimeout(() => void load(), everyMs);
      } catch (err) {
        if (stopped) return;
        setError((err as Error).message);
        timer = setTimeout(() => void load(), everyMs * 3);
      }
    };
    void load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [url, tick, everyMs]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}
