/**
 * Channel info bodies, as Nchan writes them: plain (default), JSON, YAML or XML chosen by the
 * request's `Accept`, always with a `text/*` Content-Type and CRLF line ends.
 */

/** The four fields of Nchan's channel info. */
export interface NchanChannelInfo {
  /** Messages currently buffered. */
  readonly messages: number;
  /** Seconds since a subscriber last requested the channel; -1 if none ever did. */
  readonly requested: number;
  readonly subscribers: number;
  readonly lastMessageId: string;
}

/** Info formats. */
export type InfoFormat = 'plain' | 'json' | 'yaml' | 'xml';

const ACCEPT_RE = /^\s*(?:text|application)\/(?:x-)?(plain|json|yaml|xml)\b/;

/** Pick the format from an Accept header: the first `text/` or `application/` match wins. */
export function infoFormat(accept: string | undefined): InfoFormat {
  if (!accept) return 'plain';
  for (const part of accept.split(',')) {
    const m = ACCEPT_RE.exec(part);
    if (m) return m[1] as InfoFormat;
  }
  return 'plain';
}

/** Render channel info; returns the Content-Type and body. */
export function renderInfo(info: NchanChannelInfo, format: InfoFormat): { contentType: string; body: string } {
  const { messages, requested, subscribers, lastMessageId: id } = info;
  switch (format) {
    case 'json':
      return {
        contentType: 'text/json',
        body: `{"messages": ${messages}, "requested": ${requested}, "subscribers": ${subscribers}, "last_message_id": "${id}" }`,
      };
    case 'yaml':
      return {
        contentType: 'text/yaml',
        body: `---\r\nmessages: ${messages}\r\nrequested: ${requested}\r\nsubscribers: ${subscribers}\r\nlast_message_id: "${id}"\r\n\r\n`,
      };
    case 'xml':
      return {
        contentType: 'text/xml',
        body:
          `<?xml version="1.0" encoding="UTF-8" ?>\r\n<channel>\r\n  <messages>${messages}</messages>\r\n  <requested>${requested}</requested>\r\n` +
          `  <subscribers>${subscribers}</subscribers>\r\n  <last_message_id>${id}</last_message_id>\r\n</channel>`,
      };
    default:
      return {
        contentType: 'text/plain',
        body: `queued messages: ${messages}\r\nlast requested: ${requested} sec. ago\r\nactive subscribers: ${subscribers}\r\nlast message id: ${id}`,
      };
  }
}
