/**
 * The part of @xmpp/client (and its @xmpp/xml elements) the tests use: the packages ship no
 * type declarations.
 */
declare module '@xmpp/xml' {
  /** An XML element (ltx). */
  export class Element {
    name: string;
    attrs: Record<string, string | undefined>;
    children: Array<Element | string>;
    is(name: string, xmlns?: string): boolean;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    text(): string;
    toString(): string;
  }
}

declare module '@xmpp/client' {
  import type { Element } from '@xmpp/xml';

  /** Build an element. */
  export function xml(name: string, attrs?: Record<string, string | undefined> | string | null, ...children: Array<Element | string>): Element;

  export interface Client {
    start(): Promise<{ toString(): string }>;
    stop(): Promise<void>;
    send(element: Element): Promise<void>;
    on(event: 'stanza', listener: (stanza: Element) => void): void;
    on(event: 'error', listener: (err: Error) => void): void;
    reconnect: { stop(): void };
    iqCaller: {
      get(payload: Element, to?: string, timeout?: number): Promise<Element>;
      set(payload: Element, to?: string, timeout?: number): Promise<Element>;
      /** Send a whole `<iq/>`; resolves with the result stanza. */
      request(iq: Element, timeout?: number): Promise<Element>;
    };
  }

  export function client(options: Record<string, unknown>): Client;
}
