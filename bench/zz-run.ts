const { benchRemote } = await import("/work/main/bench/remote.ts");
await benchRemote((r: any) => console.log(JSON.stringify(r)));
