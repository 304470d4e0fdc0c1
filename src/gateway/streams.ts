/**
 * Reading the start of a body without losing the rest: the gateway must buffer a request body to replay it
 * after a heal, and peek at WeChat's answer for a token errcode, yet pass large or binary bodies through
 * as streams, byte for byte.
 */

export type Prefix =
	/** The whole body fit: here it is. */
	| { readonly complete: true; readonly bytes: Uint8Array }
	/** It did not: a stream that yields what was read, then the rest. */
	| { readonly complete: false; readonly stream: ReadableStream<Uint8Array> };

/** Reads `stream` until it ends or more than `maxBytes` have arrived (at most one chunk more is held). */
export async function readUpTo(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<Prefix> {
	const reader = stream.getReader();
	const chunks: Uint8Array[] = [];
	let size = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) return { complete: true, bytes: concat(chunks, size) };
		chunks.push(value);
		size += value.byteLength;
		if (size > maxBytes) return { complete: false, stream: replay(chunks, reader) };
	}
}

function replay(chunks: Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
	return new ReadableStream<Uint8Array>({
		start(controller) {
			for (const chunk of chunks) controller.enqueue(chunk);
		},
		async pull(controller) {
			const { done, value } = await reader.read();
			if (done) controller.close();
			else controller.enqueue(value);
		},
		cancel(reason) {
			return reader.cancel(reason);
		},
	});
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
	if (chunks.length === 1) return chunks[0]!;
	const bytes = new Uint8Array(size);
	let offset = 0;
	for (const chunk of chunks) {
		bytes.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return bytes;
}
