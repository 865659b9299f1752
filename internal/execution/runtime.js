// The monday runtime (spec §7), the sandbox prelude of every execution.
// `host` holds the engine's functions; they stay in this closure. It
// returns the builders of the two globals user code can reach:
//
//   atp.llm / approval / embedding  → host.atp.llm, approval, embedding.*: the call pauses for the client
//   atp.cache / progress            → synchronous host functions, wrapped async as the reference API is
//   api.<group>.<tool>              → host.api.callTool (server: runs on the server, no pause) or
//                                     host.api.clientTool (client: pauses); host.api.gate first when
//                                     the tool's metadata forces an approval (a denial rejects)
//
// The sandbox runs this when the code first touches atp or api, and each
// builder when its global is first used; each member of atp and each
// top-level group of api is built on its own first use too (js.lazy), so
// an execution pays only for what its code touches. That may be after the
// code has replaced built-ins, so this file uses syntax, host and js only
// (see sandbox.Prelude): no method of a built-in prototype, no global.
//
// Arguments reach the host as JSON, so values the code passes are copies.
(function (host, js) {
	'use strict';
	const define = js.define;
	const lazy = js.lazy;
	const str = js.string;
	const hasOwn = js.hasOwn;

	// tool is the function of the tool with that index (server tools
	// first, then client tools): async, so that an error of the host call
	// rejects rather than throws, as in the reference.
	const tool = function (h, index, gate) {
		if (index < h.servers) {
			return gate
				? async function (input) { await h.gate(index, input); return h.callTool(index, input); }
				: async function (input) { return h.callTool(index, input); };
		}
		return gate
			? async function (input) { await h.gate(index, input); return h.clientTool(index, input); }
			: async function (input) { return h.clientTool(index, input); };
	};

	// group builds what api holds under one top-level name from the tools
	// under it, each [index, name, gate, path]: nested by its group path
	// below the name (a group "github/readOnly" is api.github.readOnly),
	// in tool order.
	const group = function (h, tools) {
		const root = {};
		for (let i = 0; i < tools.length; i++) {
			const t = tools[i];
			const path = t[3];
			let target = root;
			for (let j = 0; j < path.length; j++) {
				const seg = path[j];
				let next = hasOwn(target, seg) ? target[seg] : undefined;
				if (next === null || typeof next !== 'object') {
					next = {};
					define(target, seg, next);
				}
				target = next;
			}
			define(target, t[1], tool(h, t[0], t[2]));
		}
		return root;
	};

	return {
		atp: function () {
			const h = host.atp;
			const atp = {};
			lazy(atp, 'llm', function () {
				const llm = h.llm;
				return {
					call: async function (options) { return llm('call', options); },
					extract: async function (options) { return llm('extract', options); },
					classify: async function (options) { return llm('classify', options); },
				};
			});
			lazy(atp, 'approval', function () {
				const approval = h.approval;
				return {
					request: async function (message, context) { return approval(message, context); },
				};
			});
			lazy(atp, 'embedding', function () {
				const embedding = h.embedding;
				return {
					embed: async function (input, metadata) { return embedding.embed(input, metadata); },
					search: async function (query, options) { return embedding.search(query, options); },
					similarity: async function (text1, text2) { return embedding.similarity(text1, text2); },
					getAll: function () { return embedding.all(); },
					count: function () { return embedding.count(); },
				};
			});
			lazy(atp, 'cache', function () {
				const cache = h.cache;
				return {
					get: async function (key) { return cache.get(str(key)); },
					set: async function (key, value, ttl) { cache.set(str(key), value, ttl); },
					has: async function (key) { return cache.has(str(key)); },
					delete: async function (key) { cache.delete(str(key)); },
					clear: async function () { cache.clear(); },
				};
			});
			lazy(atp, 'progress', function () {
				const progress = h.progress;
				return {
					report: function (message, fraction) { progress(message, fraction); },
				};
			});
			return atp;
		},
		api: function () {
			const h = host.api;
			const api = {};
			const keys = h.keys;
			for (let i = 0; i < keys.length; i++) {
				const key = keys[i];
				lazy(api, key, function () { return group(h, h.groups[key]); });
			}
			return api;
		},
	};
})
