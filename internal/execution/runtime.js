// The monday runtime (spec §7), run as the sandbox prelude of every
// execution. `host` holds the engine's functions; they stay in this
// closure. Everything user code can reach is built here:
//
//   atp.llm / approval / embedding  → host.park.*: the call pauses for the client
//   atp.cache / progress            → synchronous host functions, wrapped async as the reference API is
//   api.<group>.<tool>              → host.tools[i].call (server: runs on the server, no pause)
//                                     or host.park.clientTool (client: pauses)
//
// Arguments reach the host as JSON, so values the code passes are copies.
(function (host) {
	'use strict';
	const ErrorCtor = Error;
	const StringCtor = String;
	const defineProperty = Object.defineProperty;
	const hasOwn = Object.prototype.hasOwnProperty;
	const park = host.park;
	const cache = host.cache;

	// define sets an own property even for names like __proto__, which a
	// plain assignment would treat as the prototype.
	const define = function (obj, name, value) {
		defineProperty(obj, name, {value: value, writable: true, enumerable: true, configurable: true});
	};

	const atp = {
		llm: {
			call: async function (options) { return park.llm('call', options); },
			extract: async function (options) { return park.llm('extract', options); },
			classify: async function (options) { return park.llm('classify', options); },
		},
		approval: {
			request: async function (message, context) { return park.approval(message, context); },
		},
		embedding: {
			embed: async function (input, metadata) { return park.embed(input, metadata); },
			search: async function (query, options) { return park.search(query, options); },
			similarity: async function (text1, text2) { return park.similarity(text1, text2); },
			getAll: function () { return host.embeddings(); },
			count: function () { return host.embeddingCount(); },
		},
		cache: {
			get: async function (key) { return cache.get(StringCtor(key)); },
			set: async function (key, value, ttl) { cache.set(StringCtor(key), value, ttl); },
			has: async function (key) { return cache.has(StringCtor(key)); },
			delete: async function (key) { cache.delete(StringCtor(key)); },
			clear: async function () { cache.clear(); },
		},
		progress: {
			report: function (message, fraction) { host.progress(message, fraction); },
		},
	};

	// gate asks for the approval a tool's metadata forces; anything but an
	// approval (a denial, an __error answer) refuses the call.
	const gate = async function (i, input) {
		const answer = await park.gate(i, input);
		if (!answer || !answer.approved) {
			throw new ErrorCtor(host.tools[i].denied);
		}
	};

	const api = {};
	const tools = host.tools;
	for (let i = 0; i < tools.length; i++) {
		const t = tools[i];
		let target = api;
		for (let j = 0; j < t.path.length; j++) {
			const seg = t.path[j];
			let next = hasOwn.call(target, seg) ? target[seg] : undefined;
			if (next === null || typeof next !== 'object') {
				next = {};
				define(target, seg, next);
			}
			target = next;
		}
		const call = t.client
			? function (input) { return park.clientTool(i, input); }
			: t.call;
		define(target, t.name, t.gate
			? async function (input) { await gate(i, input); return call(input); }
			: async function (input) { return call(input); });
	}

	const global = function (name, value) {
		defineProperty(globalThis, name, {value: value, writable: true, enumerable: false, configurable: true});
	};
	global('atp', atp);
	global('api', api);
})
