export interface ImportRule {
  room: string | string[];
  why: string;
  allow: string[];
  typeOnly?: string[];
  deny?: string[];
}
export const RULES: ImportRule[];
export function ruleFor(file: string): ImportRule | undefined;
export function importsOf(text: string): { specifier: string; typeOnly: boolean }[];
export function checkFile(file: string, text: string, exists?: (path: string) => boolean): string[];
export function checkRepository(root: string): string[];
