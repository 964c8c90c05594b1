/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the mustache engine: a table of conformance cases written
 * from the rules of the mustache specification (interpolation, sections,
 * inverted sections, comments, partials, set delimiter; HTML escaping is
 * not part of drover's engine), then drover's own rules: value filters,
 * error positions, limits and the template folder loader.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "template.h"
#include "../common/suite_main.h"

/* Case flags. */
#define ANY 1u /* default kind "unchecked": the value itself is not the test */
#define OPT 2u /* missing partials render as nothing (spec behaviour) */

struct spec_case {
    const char *name;
    const char *data;     /* JSON */
    const char *tpl;      /* the template under test */
    const char *partials; /* JSON object {name: text} or NULL */
    const char *want;
    unsigned flags;
};

static const struct spec_case cases[] = {
    /* ---- interpolation ---- */
    {"interp: text without tags is copied", "{}", "plain text\nline two\n", NULL,
     "plain text\nline two\n", 0},
    {"interp: basic variable", "{\"who\":\"proxy\"}", "hi {{who}}!", NULL, "hi proxy!", 0},
    {"interp: triple mustache", "{\"v\":\"a<b>&c\"}", "[{{{v}}}]", NULL, "[a<b>&c]", 0},
    {"interp: ampersand", "{\"v\":\"a<b>&c\"}", "[{{&v}}]", NULL, "[a<b>&c]", 0},
    {"interp: double mustache is not escaped", "{\"v\":\"a<b>&c\"}", "[{{v}}]", NULL, "[a<b>&c]",
     0},
    {"interp: integer", "{\"n\":8080}", "{{n}}/{{{n}}}/{{&n}}", NULL, "8080/8080/8080", 0},
    {"interp: negative integer", "{\"n\":-17}", "{{n}}", NULL, "-17", 0},
    {"interp: decimal keeps significance", "{\"d\":1.250}", "{{d}}", NULL, "1.25", 0},
    {"interp: decimal fraction", "{\"d\":0.1}", "{{{d}}}", NULL, "0.1", 0},
    {"interp: null is empty", "{\"v\":null}", "[{{v}}][{{{v}}}][{{&v}}]", NULL, "[][][]", 0},
    {"interp: missing key is empty", "{}", "[{{v}}][{{{v}}}][{{&v}}]", NULL, "[][][]", 0},
    {"interp: booleans", "{\"t\":true,\"f\":false}", "{{t}} {{f}}", NULL, "true false", 0},
    {"interp: dotted name", "{\"a\":{\"b\":{\"c\":\"deep\"}}}", "{{a.b.c}}|{{{a.b.c}}}|{{&a.b.c}}",
     NULL, "deep|deep|deep", 0},
    {"interp: dotted name equals section form", "{\"a\":{\"b\":\"x\"}}",
     "{{a.b}}={{#a}}{{b}}{{/a}}", NULL, "x=x", 0},
    {"interp: dotted name, missing head", "{\"b\":{\"c\":\"no\"}}", "[{{a.b.c}}]", NULL, "[]", 0},
    {"interp: dotted name, broken chain", "{\"a\":{}}", "[{{a.b.c}}]", NULL, "[]", 0},
    {"interp: broken chain does not search outer contexts", "{\"a\":{\"b\":{}},\"c\":\"outer\"}",
     "[{{a.b.c}}]", NULL, "[]", 0},
    {"interp: dotted head found in outer context", "{\"a\":{\"b\":\"root\"},\"s\":{\"x\":1}}",
     "{{#s}}{{a.b}}{{/s}}", NULL, "root", 0},
    {"interp: dotted head in the innermost context wins",
     "{\"a\":{\"b\":\"outer\"},\"s\":{\"a\":{\"b\":\"inner\"}}}", "{{#s}}{{a.b}}{{/s}}", NULL,
     "inner", 0},
    {"interp: dotted head shadowed although it lacks the rest",
     "{\"a\":{\"b\":\"outer\"},\"s\":{\"a\":{}}}", "[{{#s}}{{a.b}}{{/s}}]", NULL, "[]", 0},
    {"interp: a key containing a dot is never matched whole", "{\"a.b\":\"no\"}", "[{{a.b}}]", NULL,
     "[]", 0},
    {"interp: implicit iterator on a string", "\"top\"", "<{{.}}>", NULL, "<top>", 0},
    {"interp: implicit iterator on a number", "42", "<{{.}}>", NULL, "<42>", 0},
    {"interp: whitespace around tag kept", "{\"v\":\"x\"}", "| {{v}} |", NULL, "| x |", 0},
    {"interp: triple keeps surrounding whitespace", "{\"v\":\"x\"}", "| {{{v}}} |", NULL, "| x |",
     0},
    {"interp: variable alone on a line is not standalone", "{\"v\":\"x\"}", "  {{v}}\n", NULL,
     "  x\n", 0},
    {"interp: triple alone on a line is not standalone", "{\"v\":\"x\"}", "  {{{v}}}\n", NULL,
     "  x\n", 0},
    {"interp: padding inside the tag", "{\"v\":\"x\"}", "|{{ v }}|{{{ v }}}|{{& v }}|", NULL,
     "|x|x|x|", 0},
    {"interp: several tags on a line", "{\"a\":\"1\",\"b\":\"2\"}", "{{a}}{{b}}{{a}}", NULL, "121",
     0},
    {"interp: value with spaces when unchecked", "{\"v\":\"two words\"}", "{{v}}", NULL,
     "two words", ANY},
    {"interp: a value is not parsed as a template", "{\"v\":\"{{w}}\",\"w\":\"no\"}", "{{v}}", NULL,
     "{{w}}", 0},

    /* ---- sections ---- */
    {"section: true renders", "{\"b\":true}", "<{{#b}}yes{{/b}}>", NULL, "<yes>", 0},
    {"section: false skips", "{\"b\":false}", "<{{#b}}yes{{/b}}>", NULL, "<>", 0},
    {"section: null skips", "{\"b\":null}", "<{{#b}}yes{{/b}}>", NULL, "<>", 0},
    {"section: missing key skips", "{}", "<{{#b}}yes{{/b}}>", NULL, "<>", 0},
    {"section: object becomes the context", "{\"o\":{\"n\":\"in\"},\"n\":\"out\"}",
     "{{#o}}{{n}}{{/o}}", NULL, "in", 0},
    {"section: outer keys stay visible", "{\"o\":{\"x\":\"1\"},\"y\":\"2\"}",
     "{{#o}}{{x}}{{y}}{{/o}}", NULL, "12", 0},
    {"section: nested contexts", "{\"a\":{\"one\":1},\"b\":{\"two\":2},\"c\":{\"three\":3}}",
     "{{#a}}{{one}}{{#b}}{{one}}{{two}}{{#c}}{{one}}{{two}}{{three}}{{/c}}{{/b}}{{/a}}", NULL,
     "112123", 0},
    {"section: list iterates", "{\"l\":[{\"x\":\"a\"},{\"x\":\"b\"},{\"x\":\"c\"}]}",
     "{{#l}}{{x}},{{/l}}", NULL, "a,b,c,", 0},
    {"section: empty list skips", "{\"l\":[]}", "<{{#l}}x{{/l}}>", NULL, "<>", 0},
    {"section: list of strings", "{\"l\":[\"a\",\"b\"]}", "{{#l}}({{.}}){{/l}}", NULL, "(a)(b)", 0},
    {"section: list of integers", "{\"l\":[1,2,3]}", "{{#l}}{{.}};{{/l}}", NULL, "1;2;3;", 0},
    {"section: list of decimals", "{\"l\":[1.5,2.25]}", "{{#l}}{{.}};{{/l}}", NULL, "1.5;2.25;", 0},
    {"section: list of lists", "{\"l\":[[1,2],[\"x\",\"y\"]]}", "{{#l}}[{{#.}}{{.}}{{/.}}]{{/l}}",
     NULL, "[12][xy]", 0},
    {"section: string renders once with itself as context", "{\"s\":\"v\"}", "{{#s}}<{{.}}>{{/s}}",
     NULL, "<v>", 0},
    {"section: number renders once", "{\"n\":7}", "{{#n}}<{{.}}>{{/n}}", NULL, "<7>", 0},
    {"section: doubled", "{\"b\":true,\"x\":\"X\"}", "{{#b}}1{{/b}}{{x}}{{#b}}2{{/b}}", NULL, "1X2",
     0},
    {"section: nested true", "{\"b\":true}", "{{#b}}a{{#b}}b{{/b}}c{{/b}}", NULL, "abc", 0},
    {"section: nested false", "{\"t\":true,\"f\":false}", "{{#t}}a{{#f}}b{{/f}}c{{/t}}", NULL, "ac",
     0},
    {"section: same name inside list item", "{\"l\":[{\"l\":false}]}", "{{#l}}x{{#l}}y{{/l}}{{/l}}",
     NULL, "x", 0},
    {"section: dotted name true", "{\"a\":{\"b\":{\"c\":true}}}", "{{#a.b.c}}yes{{/a.b.c}}", NULL,
     "yes", 0},
    {"section: dotted name false", "{\"a\":{\"b\":{\"c\":false}}}", "<{{#a.b.c}}yes{{/a.b.c}}>",
     NULL, "<>", 0},
    {"section: dotted broken chain", "{\"a\":{}}", "<{{#a.b.c}}yes{{/a.b.c}}>", NULL, "<>", 0},
    {"section: whitespace around is kept", "{\"b\":true}", " | {{#b}}\t|\t{{/b}} | \n", NULL,
     " | \t|\t | \n", 0},
    {"section: whitespace inside is kept", "{\"b\":true}", " | {{#b}} {{! c }} {{/b}} | \n", NULL,
     " |    | \n", 0},
    {"section: indented inline sections", "{\"b\":true}", " {{#b}}A{{/b}}\n {{#b}}B{{/b}}\n", NULL,
     " A\n B\n", 0},
    {"section: standalone lines are removed", "{\"b\":true}", "|\n{{#b}}\n|x|\n{{/b}}\n|\n", NULL,
     "|\n|x|\n|\n", 0},
    {"section: indented standalone lines are removed", "{\"b\":true}",
     "|\n  {{#b}}\n|x|\n\t {{/b}}  \n|\n", NULL, "|\n|x|\n|\n", 0},
    {"section: standalone with CRLF", "{\"b\":true}", "|\r\n{{#b}}\r\n{{/b}}\r\n|", NULL, "|\r\n|",
     0},
    {"section: standalone on the first line", "{\"b\":true}", "  {{#b}}\n*{{/b}}\n/", NULL, "*\n/",
     0},
    {"section: standalone on the last line without newline", "{\"b\":true}", "*{{#b}}\n/\n  {{/b}}",
     NULL, "*\n/\n", 0},
    {"section: two tags on one line are not standalone", "{\"b\":true}", "{{#b}}{{/b}}\nx", NULL,
     "\nx", 0},
    {"section: padding inside the tags", "{\"b\":true}", "<{{# b }}y{{/ b }}>", NULL, "<y>", 0},
    {"section: context misses do not fail", "{}", "[{{#missing}}x{{/missing}}]", NULL, "[]", 0},
    {"section: deeply nested contexts",
     "{\"a\":{\"x\":1},\"b\":{\"y\":2},\"c\":{\"z\":3},\"d\":{\"x\":4}}",
     "{{#a}}{{#b}}{{#c}}{{#d}}{{x}}{{y}}{{z}}{{/d}}{{/c}}{{/b}}{{/a}}", NULL, "423", 0},
    {"section: implicit iterator as a section over strings", "{\"l\":[\"a\",\"\",\"c\"]}",
     "{{#l}}{{#.}}<{{.}}>{{/.}}{{/l}}", NULL, "<a><c>", 0},
    {"section: the root itself can be a list", "[{\"v\":\"a\"},{\"v\":\"b\"}]",
     "{{#.}}<{{v}}>{{/.}}", NULL, "<a><b>", 0},
    {"section: a scalar section keeps outer keys visible", "{\"k\":\"val\"}",
     "{{#k}}{{.}}={{k}}{{/k}}", NULL, "val=val", 0},
    {"section: empty object is truthy", "{\"o\":{}}", "<{{#o}}y{{/o}}>", NULL, "<y>", 0},
    {"section: empty string and zero are falsey", "{\"s\":\"\",\"z\":0}",
     "<{{#s}}s{{/s}}{{#z}}z{{/z}}>", NULL, "<>", 0},

    /* ---- inverted sections ---- */
    {"inverted: false renders", "{\"b\":false}", "<{{^b}}no{{/b}}>", NULL, "<no>", 0},
    {"inverted: true skips", "{\"b\":true}", "<{{^b}}no{{/b}}>", NULL, "<>", 0},
    {"inverted: null renders", "{\"b\":null}", "<{{^b}}no{{/b}}>", NULL, "<no>", 0},
    {"inverted: object skips", "{\"o\":{\"k\":1}}", "<{{^o}}no{{/o}}>", NULL, "<>", 0},
    {"inverted: list skips", "{\"l\":[1]}", "<{{^l}}no{{/l}}>", NULL, "<>", 0},
    {"inverted: empty list renders", "{\"l\":[]}", "<{{^l}}no{{/l}}>", NULL, "<no>", 0},
    {"inverted: missing key renders", "{}", "<{{^m}}no{{/m}}>", NULL, "<no>", 0},
    {"inverted: doubled", "{\"b\":false,\"x\":\"X\"}", "{{^b}}1{{/b}}{{x}}{{^b}}2{{/b}}", NULL,
     "1X2", 0},
    {"inverted: nested falsey", "{\"f\":false}", "{{^f}}a{{^f}}b{{/f}}c{{/f}}", NULL, "abc", 0},
    {"inverted: inside a section keeps the context", "{\"o\":{\"x\":\"v\",\"f\":false}}",
     "{{#o}}{{^f}}{{x}}{{/f}}{{/o}}", NULL, "v", 0},
    {"inverted: dotted true", "{\"a\":{\"b\":true}}", "<{{^a.b}}no{{/a.b}}>", NULL, "<>", 0},
    {"inverted: dotted false", "{\"a\":{\"b\":false}}", "<{{^a.b}}no{{/a.b}}>", NULL, "<no>", 0},
    {"inverted: dotted broken chain", "{\"a\":{}}", "<{{^a.b.c}}no{{/a.b.c}}>", NULL, "<no>", 0},
    {"inverted: whitespace around is kept", "{\"b\":false}", " | {{^b}}\t|\t{{/b}} | \n", NULL,
     " | \t|\t | \n", 0},
    {"inverted: indented inline", "{\"b\":false}", " {{^b}}A{{/b}}\n {{^b}}B{{/b}}\n", NULL,
     " A\n B\n", 0},
    {"inverted: standalone lines are removed", "{\"b\":false}", "|\n{{^b}}\n|x|\n{{/b}}\n|\n", NULL,
     "|\n|x|\n|\n", 0},
    {"inverted: indented standalone lines", "{\"b\":false}", "|\n   {{^b}}\n|x|\n  {{/b}}\n|\n",
     NULL, "|\n|x|\n|\n", 0},
    {"inverted: standalone with CRLF", "{\"b\":false}", "|\r\n{{^b}}\r\n{{/b}}\r\n|", NULL,
     "|\r\n|", 0},
    {"inverted: standalone on the first line", "{\"b\":false}", "  {{^b}}\n^{{/b}}\n/", NULL,
     "^\n/", 0},
    {"inverted: standalone on the last line", "{\"b\":false}", "^{{^b}}\n/\n  {{/b}}", NULL,
     "^\n/\n", 0},
    {"inverted: padding", "{\"b\":false}", "<{{^ b }}n{{/ b }}>", NULL, "<n>", 0},

    /* ---- comments ---- */
    {"comment: inline comment disappears", "{}", "12{{! hidden }}34", NULL, "1234", 0},
    {"comment: multiline inline comment", "{}", "12{{!\n a\n b\n}}34", NULL, "1234", 0},
    {"comment: standalone line removed", "{}", "A\n{{! c }}\nB\n", NULL, "A\nB\n", 0},
    {"comment: indented standalone", "{}", "A\n  \t{{! c }}  \nB\n", NULL, "A\nB\n", 0},
    {"comment: standalone with CRLF", "{}", "|\r\n{{! c }}\r\n|", NULL, "|\r\n|", 0},
    {"comment: standalone on the first line", "{}", "  {{! c }}\n!", NULL, "!", 0},
    {"comment: standalone on the last line", "{}", "!\n  {{! c }}", NULL, "!\n", 0},
    {"comment: multiline standalone", "{}", "A\n{{!\nx\ny\n}}\nB\n", NULL, "A\nB\n", 0},
    {"comment: indented multiline standalone", "{}", "A\n  {{!\n x\n}}  \nB\n", NULL, "A\nB\n", 0},
    {"comment: indented inline keeps spaces", "{}", "  12 {{! c }}\n", NULL, "  12 \n", 0},
    {"comment: surrounding whitespace kept", "{}", "12 {{! c }} 34", NULL, "12  34", 0},
    {"comment: a comment naming a key renders nothing", "{\"k\":\"v\"}", "<{{!k}}>", NULL, "<>", 0},
    {"comment: may contain braces", "{}", "<{{! {x} }}>", NULL, "<>", 0},

    /* ---- partials ---- */
    {"partial: basic", "{}", "<{{>p}}>", "{\"p\":\"in\"}", "<in>", 0},
    {"partial: unknown renders nothing (spec mode)", "{}", "<{{>nope}}>", "{}", "<>", OPT},
    {"partial: uses the caller's context", "{\"v\":\"x\"}", "<{{>p}}>", "{\"p\":\"*{{v}}*\"}",
     "<*x*>", 0},
    {"partial: inside a section sees the section context", "{\"l\":[{\"n\":\"a\"},{\"n\":\"b\"}]}",
     "{{#l}}{{>p}}{{/l}}", "{\"p\":\"[{{n}}]\"}", "[a][b]", 0},
    {"partial: recursion over a tree",
     "{\"v\":\"1\",\"kids\":[{\"v\":\"2\",\"kids\":[{\"v\":\"3\",\"kids\":[]}]},"
     "{\"v\":\"4\",\"kids\":[]}]}",
     "{{>node}}", "{\"node\":\"{{v}}({{#kids}}{{>node}}{{/kids}})\"}", "1(2(3())4())", 0},
    {"partial: nested partials", "{\"a\":\"A\",\"b\":\"B\"}", "{{>outer}}",
     "{\"outer\":\"<{{a}}{{>inner}}>\",\"inner\":\"[{{b}}]\"}", "<A[B]>", 0},
    {"partial: surrounding whitespace kept", "{}", "| {{>p}} |", "{\"p\":\"\\t|\\t\"}", "| \t|\t |",
     0},
    {"partial: inline partial is not indented", "{\"d\":\"|\"}", "  {{d}}  {{> p}}\n",
     "{\"p\":\">\\n>\"}", "  |  >\n>\n", 0},
    {"partial: standalone with CRLF", "{}", "|\r\n{{>p}}\r\n|", "{\"p\":\">\"}", "|\r\n>|", 0},
    {"partial: standalone on the first line", "{}", "  {{>p}}\n>", "{\"p\":\">\\n>\"}", "  >\n  >>",
     0},
    {"partial: standalone on the last line", "{}", ">\n  {{>p}}", "{\"p\":\">\\n>\"}",
     ">\n  >\n  >", 0},
    {"partial: standalone indentation applies to every line but not to values",
     "{\"content\":\"<\\n->\"}", "\\\n {{>p}}\n/\n", "{\"p\":\"|\\n{{{content}}}\\n|\\n\"}",
     "\\\n |\n <\n->\n |\n/\n", ANY},
    {"partial: padding in the tag", "{\"b\":true}", "|{{> p }}|", "{\"p\":\"[]\"}", "|[]|", 0},
    {"partial: standalone tags inside an indented partial", "{\"b\":true}", "x\n  {{>p}}\ny\n",
     "{\"p\":\"{{#b}}\\n1\\n{{/b}}\\n2\\n\"}", "x\n  1\n  2\ny\n", 0},
    {"partial: nested standalone indentation adds up", "{}", "  {{>a}}\n",
     "{\"a\":\"a1\\n  {{>b}}\\na2\\n\",\"b\":\"b1\\nb2\\n\"}", "  a1\n    b1\n    b2\n  a2\n", 0},
    {"partial: inline partial inside an indented partial is not indented", "{}", "  {{>a}}\n",
     "{\"a\":\"x{{>b}}\\n\",\"b\":\"1\\n2\"}", "  x1\n2\n", 0},
    {"partial: indentation before a comment line of the partial", "{}", "  {{>p}}\n",
     "{\"p\":\"{{!c}}t\\n\"}", "  t\n", 0},

    /* ---- set delimiter ---- */
    {"delims: pair", "{\"t\":\"T\"}", "{{=<% %>=}}(<%t%>)", NULL, "(T)", 0},
    {"delims: special characters", "{\"t\":\"T\"}", "({{=[ ]=}}[t])", NULL, "(T)", 0},
    {"delims: sections", "{\"b\":true,\"t\":\"T\"}",
     "[\n{{#b}}\n  {{t}}\n  {{=| |=}}\n  |t|\n|/b|\n|#b|\n  {{t}}\n|/b|\n]\n", NULL,
     "[\n  T\n  T\n  {{t}}\n]\n", 0},
    {"delims: inverted sections", "{\"b\":false,\"t\":\"T\"}",
     "[\n{{^b}}\n  {{t}}\n  {{=| |=}}\n  |t|\n|/b|\n|^b|\n  {{t}}\n|/b|\n]\n", NULL,
     "[\n  T\n  T\n  {{t}}\n]\n", 0},
    {"delims: partials start with default delimiters", "{\"v\":\"V\"}",
     "[ {{>p}} ]\n{{= | | =}}\n[ |>p| ]\n", "{\"p\":\".{{v}}. |v|\"}", "[ .V. |v| ]\n[ .V. |v| ]\n",
     0},
    {"delims: a partial's delimiters do not leak out", "{\"v\":\"V\"}",
     "[ {{>p}} ]\n[ .{{v}}.  .|v|. ]\n", "{\"p\":\".{{v}}. {{= | | =}} .|v|.\"}",
     "[ .V.  .V. ]\n[ .V.  .|v|. ]\n", 0},
    {"delims: surrounding whitespace kept", "{}", "| {{=@ @=}} |", NULL, "|  |", 0},
    {"delims: inline delimiter tag keeps the line", "{}", " | {{=@ @=}}\n", NULL, " | \n", 0},
    {"delims: standalone line removed", "{}", "B\n{{=@ @=}}\nE", NULL, "B\nE", 0},
    {"delims: indented standalone", "{}", "B\n  {{=@ @=}}\nE", NULL, "B\nE", 0},
    {"delims: standalone with CRLF", "{}", "|\r\n{{= @ @ =}}\r\n|", NULL, "|\r\n|", 0},
    {"delims: standalone on the first line", "{}", "  {{=@ @=}}\n=", NULL, "=", 0},
    {"delims: standalone on the last line", "{}", "=\n  {{=@ @=}}", NULL, "=\n", 0},
    {"delims: padding inside the tag", "{\"t\":\"T\"}", "|{{= @   @ =}}|@t@|", NULL, "||T|", 0},
    {"delims: triple and ampersand with new delimiters", "{\"t\":\"T\"}",
     "{{=<% %>=}}<%{t}%>/<%& t %>", NULL, "T/T", 0},
    {"delims: long delimiters", "{\"t\":\"T\"}", "{{=<<< >>>=}}<<<t>>>{{t}}", NULL, "T{{t}}", 0},
    {"delims: back to the defaults", "{\"t\":\"T\"}", "{{=<% %>=}}<%t%><%={{ }}=%>{{t}}", NULL,
     "TT", 0},
};

static struct template_set *make_set(const struct spec_case *c)
{
    struct template_options opts;
    struct template_set *set = NULL;
    struct template_error err;
    char msg[512];

    template_options_init(&opts);
    if (c->flags & ANY)
        opts.default_kind = HAPROXY_VALUE_UNCHECKED;
    if (c->flags & OPT)
        opts.missing_partial_is_empty = true;
    ck_assert_int_eq(template_set_new(&opts, &set), 0);
    int rc = template_set_add(set, "main", c->tpl, strlen(c->tpl), &err);
    ck_assert_msg(rc == 0, "%s: %s", c->name, template_error_format(&err, msg, sizeof(msg)));
    if (c->partials) {
        json_error_t jerr;
        json_t *p = json_loads(c->partials, 0, &jerr);
        const char *name;
        json_t *text;
        ck_assert_msg(p != NULL, "%s: bad partials JSON: %s", c->name, jerr.text);
        json_object_foreach(p, name, text)
        {
            rc = template_set_add(set, name, json_string_value(text), json_string_length(text),
                                  &err);
            ck_assert_msg(rc == 0, "%s: %s", c->name,
                          template_error_format(&err, msg, sizeof(msg)));
        }
        json_decref(p);
    }
    rc = template_set_check(set, &err);
    ck_assert_msg(rc == 0, "%s: %s", c->name, template_error_format(&err, msg, sizeof(msg)));
    return set;
}

START_TEST(test_spec_case)
{
    const struct spec_case *c = &cases[_i];
    struct template_set *set = make_set(c);
    struct template_buf out = {0};
    struct template_error err;
    json_error_t jerr;
    char msg[512];
    json_t *data = json_loads(c->data, JSON_DECODE_ANY, &jerr);

    ck_assert_msg(data != NULL, "%s: bad data JSON: %s", c->name, jerr.text);
    int rc = template_render(set, "main", data, &out, &err);
    ck_assert_msg(rc == 0, "%s: %s", c->name, template_error_format(&err, msg, sizeof(msg)));
    ck_assert_msg(strcmp(out.data, c->want) == 0, "%s:\nwant [%s]\ngot  [%s]", c->name, c->want,
                  out.data);
    ck_assert_uint_eq(out.len, strlen(c->want));
    /* Rendering again from the same compiled set gives the same text. */
    out.len = 0;
    ck_assert_int_eq(template_render(set, "main", data, &out, &err), 0);
    ck_assert_str_eq(out.data, c->want);
    template_buf_free(&out);
    json_decref(data);
    template_set_free(set);
}
END_TEST

/* ---- drover's own rules ------------------------------------------------ */

struct outcome {
    int rc;
    struct template_error err;
    char text[1024];
};

/* Compile `tpl` as template "t" (plus one optional partial "p") and render
 * it against `json`; the outcome holds the rc of the first failing step. */
static struct outcome run(const char *tpl, const char *partial, const char *json,
                          const struct template_options *opts)
{
    struct outcome o;
    struct template_set *set = NULL;
    struct template_buf out = {0};
    json_t *data = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    memset(&o, 0, sizeof(o));
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(template_set_new(opts, &set), 0);
    o.rc = template_set_add(set, "t", tpl, strlen(tpl), &o.err);
    if (o.rc == 0 && partial)
        o.rc = template_set_add(set, "p", partial, strlen(partial), &o.err);
    if (o.rc == 0)
        o.rc = template_set_check(set, &o.err);
    if (o.rc == 0)
        o.rc = template_render(set, "t", data, &out, &o.err);
    if (o.rc == 0)
        snprintf(o.text, sizeof(o.text), "%s", out.data);
    else
        ck_assert_int_eq(o.err.code, o.rc);
    template_buf_free(&out);
    json_decref(data);
    template_set_free(set);
    return o;
}

static void assert_error(const struct outcome *o, int rc, const char *tname, unsigned line,
                         unsigned col, const char *key, const char *fragment)
{
    char msg[512];
    template_error_format(&o->err, msg, sizeof(msg));
    ck_assert_msg(o->rc == rc, "rc %d, want %d: %s", o->rc, rc, msg);
    ck_assert_str_eq(o->err.template_name, tname);
    ck_assert_msg(o->err.line == line && o->err.column == col, "at %u:%u, want %u:%u: %s",
                  o->err.line, o->err.column, line, col, msg);
    ck_assert_str_eq(o->err.key, key);
    ck_assert_msg(strstr(o->err.message, fragment), "message lacks '%s': %s", fragment, msg);
}

START_TEST(test_list_index)
{
    struct outcome o = run("{{#l.0}}first={{.}} {{/l.0}}{{l.1}}[{{l.9}}]{{#e.0}}no{{/e.0}}", NULL,
                           "{\"l\":[\"a\",\"b\"],\"e\":[]}", NULL);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_str_eq(o.text, "first=a b[]");
    o = run("[{{l.x}}{{l.01x}}]", NULL, "{\"l\":[\"a\"]}", NULL);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_str_eq(o.text, "[]");
}
END_TEST

START_TEST(test_filters_format_values)
{
    struct outcome o = run("server {{n | name}} {{a|addr}}:{{p|port}} weight {{w|weight}} "
                           "{{q|quoted}} {{h|host}} {{u|path}} {{d|duration}} {{i|ip}}",
                           NULL,
                           "{\"n\":\"web-1\",\"a\":\"2001:DB8::0:1\",\"p\":8080,\"w\":100,"
                           "\"q\":\"it's here\",\"h\":\"api.example.com\",\"u\":\"/healthz?x=1\","
                           "\"d\":\"250ms\",\"i\":\"::1\"}",
                           NULL);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_str_eq(o.text, "server web-1 [2001:db8::1]:8080 weight 100 'it'\\''s here' "
                             "api.example.com /healthz?x=1 250ms ::1");
}
END_TEST

START_TEST(test_default_filter_refuses_newline)
{
    struct outcome o = run("global\n  maxconn 10\nbackend b\n  server s {{srv.addr}}:80\n", NULL,
                           "{\"srv\":{\"addr\":\"10.0.0.1\\n  stats enable\"}}", NULL);
    assert_error(&o, -EINVAL, "t", 4, 12, "srv.addr", "contains a newline");
    ck_assert_ptr_nonnull(strstr(o.err.message, "filter word"));
    /* the refused value is shown escaped, never raw */
    ck_assert_ptr_nonnull(strstr(o.err.message, "10.0.0.1\\x0a"));
    ck_assert_ptr_null(strchr(o.err.message, '\n'));
}
END_TEST

START_TEST(test_default_filter_refuses_space_and_comment)
{
    struct outcome o = run("x {{v}}", NULL, "{\"v\":\"a b\"}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 3, "v", "space");
    o = run("x {{v}}", NULL, "{\"v\":\"a#b\"}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 3, "v", "comment");
    o = run("x {{{v}}} {{&v}}", NULL, "{\"v\":\"a\\u0000b\"}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 3, "v", "NUL");
    o = run("x {{v}}", NULL, "{\"v\":\"\\r\"}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 3, "v", "carriage return");
}
END_TEST

START_TEST(test_filter_refusal_names_filter_and_position)
{
    struct outcome o = run("a\n{{#servers}}\n  server {{name|name}} {{addr | addr}}:{{port|port}}\n"
                           "{{/servers}}\n",
                           NULL,
                           "{\"servers\":[{\"name\":\"s1\",\"addr\":\"10.0.0.1\",\"port\":80},"
                           "{\"name\":\"s2\",\"addr\":\"10.0.0.2\",\"port\":70000}]}",
                           NULL);
    assert_error(&o, -EINVAL, "t", 3, 40, "port", "filter port");
    o = run("{{a|addr}}", NULL, "{\"a\":\"10.0.0.256\"}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "a", "not an IPv4 or IPv6 address");
}
END_TEST

START_TEST(test_partial_error_names_partial)
{
    struct outcome o = run("top\n  {{>p}}\n", "line1\nx {{v|uint}}\n", "{\"v\":\"-1\"}", NULL);
    assert_error(&o, -EINVAL, "p", 2, 3, "v", "unsigned");
}
END_TEST

START_TEST(test_non_scalar_interpolation_refused)
{
    struct outcome o = run("{{o}}", NULL, "{\"o\":{\"a\":1}}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "o", "an object");
    o = run("\n {{l}}", NULL, "{\"l\":[1]}", NULL);
    assert_error(&o, -EINVAL, "t", 2, 2, "l", "a list");
}
END_TEST

START_TEST(test_strict_variables)
{
    struct template_options opts;
    template_options_init(&opts);
    opts.strict_variables = true;
    struct outcome o = run("a {{x.y}}", NULL, "{\"x\":{}}", &opts);
    assert_error(&o, -EINVAL, "t", 1, 3, "x.y", "no such key");
    o = run("a {{x}}", NULL, "{\"x\":null}", &opts);
    assert_error(&o, -EINVAL, "t", 1, 3, "x", "null");
    /* sections on missing keys stay legal in strict mode */
    o = run("a{{#x}}b{{/x}}{{^x}}c{{/x}}", NULL, "{}", &opts);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_str_eq(o.text, "ac");
}
END_TEST

START_TEST(test_missing_value_still_filtered)
{
    /* a missing port is empty text, which is not a port */
    struct outcome o = run("bind :{{port|port}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 7, "port", "not a port");
}
END_TEST

START_TEST(test_parse_errors)
{
    struct outcome o;

    o = run("a\n  {{#open}}\nx\n", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 2, 3, "open", "never closed");
    o = run("{{#a}}\n{{#b}}x{{/a}}\n{{/b}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 2, 8, "a",
                 "does not match the open section 'b' (line 2 column 1)");
    o = run("x\ny {{/a}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 2, 3, "a", "without an open section");
    o = run("ok\n {{= <% =}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 2, 2, "", "bad set-delimiter");
    o = run("{{=<% %> x=}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "", "bad set-delimiter");
    o = run("{{=a= b=}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "", "bad set-delimiter");
    o = run("abc {{name", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 5, "", "unclosed tag");
    o = run("{{{x}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "", "unclosed tag: no '}}}'");
    o = run("{{=<% %>=}}\n<%x", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 2, 1, "", "'%>'");
    o = run("{{x|bogus}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "bogus", "unknown filter");
    o = run("{{x|unchecked}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "unchecked", "unknown filter");
    o = run("{{#x|name}}{{/x|name}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "x|name", "bad section name");
    o = run("{{a b}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "a b", "bad variable name");
    o = run("{{a..b}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "a..b", "bad variable name");
    o = run("{{}}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "", "bad variable name");
    o = run("{{> }}", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 1, 1, "", "bad partial name");
}
END_TEST

START_TEST(test_section_nesting_limit)
{
    char tpl[64 * 12 + 64];
    size_t o = 0;
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(tpl + o, sizeof(tpl) - o, "{{#a}}");
    struct outcome out = run(tpl, NULL, "{}", NULL);
    assert_error(&out, -EINVAL, "t", 1, 64 * 6 + 1, "a", "nested deeper than 64");
}
END_TEST

START_TEST(test_unknown_partial)
{
    struct outcome o = run("a\n b {{> nope }}\n", NULL, "{}", NULL);
    assert_error(&o, -EINVAL, "t", 2, 4, "nope", "unknown partial");

    /* render refuses it too when the check was skipped */
    struct template_set *set = NULL;
    struct template_buf out = {0};
    struct template_error err;
    ck_assert_int_eq(template_set_new(NULL, &set), 0);
    ck_assert_int_eq(template_set_add(set, "t", "x{{>q}}", 7, &err), 0);
    ck_assert_int_eq(template_render(set, "t", NULL, &out, &err), -EINVAL);
    ck_assert_str_eq(err.key, "q");
    ck_assert_ptr_nonnull(strstr(err.message, "unknown partial"));
    ck_assert_int_eq(template_render(set, "none", NULL, &out, &err), -ENOENT);
    template_buf_free(&out);
    template_set_free(set);
}
END_TEST

START_TEST(test_partial_recursion_limit)
{
    struct outcome o = run("{{>p}}", "x{{>p}}", "{}", NULL);
    assert_error(&o, -EINVAL, "p", 1, 2, "p", "deeper than 32");

    struct template_options opts;
    template_options_init(&opts);
    opts.max_partial_depth = 3;
    /* three nested partials are allowed, a fourth is not */
    o = run("{{>p}}", "{{#n}}<{{>p}}{{/n}}", "{\"n\":{\"n\":{\"n\":false}}}", &opts);
    ck_assert_int_eq(o.rc, 0);
    ck_assert_str_eq(o.text, "<<");
    o = run("{{>p}}", "{{#n}}<{{>p}}{{/n}}", "{\"n\":{\"n\":{\"n\":{\"n\":false}}}}", &opts);
    ck_assert_int_eq(o.rc, -EINVAL);
}
END_TEST

START_TEST(test_output_and_step_limits)
{
    struct template_options opts;
    template_options_init(&opts);
    opts.max_output = 100;
    struct outcome o = run("{{#l}}0123456789{{/l}}", NULL, "{\"l\":[1,2,3,4,5,6,7,8,9,10]}", &opts);
    ck_assert_int_eq(o.rc, 0);
    o = run("{{#l}}0123456789{{/l}}", NULL, "{\"l\":[1,2,3,4,5,6,7,8,9,10,11]}", &opts);
    assert_error(&o, -EINVAL, "t", 0, 0, "", "output larger");

    /* nested loops that write nothing still end */
    template_options_init(&opts);
    opts.max_steps = 100000;
    char list[512] = "{\"l\":[{}";
    for (int i = 0; i < 49; i++)
        strcat(list, ",{}");
    strcat(list, "]}");
    o = run("{{#l}}{{#l}}{{#l}}{{#l}}{{#l}}{{/l}}{{/l}}{{/l}}{{/l}}{{/l}}", NULL, list, &opts);
    ck_assert_int_eq(o.rc, -EINVAL);
    ck_assert_ptr_nonnull(strstr(o.err.message, "steps"));
}
END_TEST

START_TEST(test_failed_render_keeps_buffer)
{
    struct template_set *set = NULL;
    struct template_buf out = {0};
    struct template_error err;
    json_t *bad = json_pack("{s:s}", "v", "a\nb");
    json_t *good = json_pack("{s:s}", "v", "ok");

    ck_assert_int_eq(template_set_new(NULL, &set), 0);
    ck_assert_int_eq(template_set_add(set, "t", "pre {{v}} post", 14, &err), 0);
    ck_assert_int_eq(template_render(set, "t", good, &out, &err), 0);
    ck_assert_int_eq(template_render(set, "t", bad, &out, &err), -EINVAL);
    ck_assert_str_eq(out.data, "pre ok post");
    ck_assert_uint_eq(out.len, 11);
    template_buf_free(&out);
    json_decref(bad);
    json_decref(good);
    template_set_free(set);
}
END_TEST

START_TEST(test_set_names)
{
    struct template_set *set = NULL;
    struct template_error err;

    ck_assert_int_eq(template_set_new(NULL, &set), 0);
    ck_assert_int_eq(template_set_add(set, "a", "", 0, &err), 0);
    ck_assert_int_eq(template_set_add(set, "a", "x", 1, &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "exists"));
    ck_assert_int_eq(template_set_add(set, "b c", "x", 1, &err), -EINVAL);
    ck_assert_int_eq(template_set_add(set, "", "x", 1, &err), -EINVAL);
    ck_assert(template_set_has(set, "a"));
    ck_assert(!template_set_has(set, "b"));
    template_set_free(set);
}
END_TEST

START_TEST(test_error_format)
{
    struct outcome o = run("x\n  {{v|port}}", NULL, "{\"v\":\"http\"}", NULL);
    char msg[512];
    template_error_format(&o.err, msg, sizeof(msg));
    ck_assert_str_eq(msg, "template t line 2 column 3: key 'v': value \"http\" refused by filter "
                          "port: is not a port number (1-65535)");
}
END_TEST

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_load_dir)
{
    char dir[] = "/tmp/drover-template-XXXXXX";
    char sub[64], path[128];
    struct template_set *set = NULL;
    struct template_buf out = {0};
    struct template_error err;
    char msg[512];

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/partials", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    write_file(dir, "main.mustache", "A\n  {{> part}}\nZ\n");
    write_file(dir, "notes.txt", "{{#broken");
    write_file(sub, "part.mustache", "p1 {{v|name}}\np2\n");

    ck_assert_int_eq(template_set_new(NULL, &set), 0);
    int rc = template_set_load_dir(set, dir, &err);
    ck_assert_msg(rc == 0, "%s", template_error_format(&err, msg, sizeof(msg)));
    ck_assert_int_eq(template_set_check(set, &err), 0);
    ck_assert(!template_set_has(set, "notes"));
    json_t *data = json_pack("{s:s}", "v", "be_1");
    ck_assert_int_eq(template_render(set, "main", data, &out, &err), 0);
    ck_assert_str_eq(out.data, "A\n  p1 be_1\n  p2\nZ\n");
    json_decref(data);
    template_buf_free(&out);
    template_set_free(set);

    /* a duplicate name across the two folders is refused */
    write_file(sub, "main.mustache", "dup");
    ck_assert_int_eq(template_set_new(NULL, &set), 0);
    ck_assert_int_eq(template_set_load_dir(set, dir, &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "exists"));
    template_set_free(set);

    /* a parse error in a file names that template */
    snprintf(path, sizeof(path), "%s/main.mustache", sub);
    unlink(path);
    write_file(sub, "bad.mustache", "ok\n{{/x}}\n");
    ck_assert_int_eq(template_set_new(NULL, &set), 0);
    ck_assert_int_eq(template_set_load_dir(set, dir, &err), -EINVAL);
    ck_assert_str_eq(err.template_name, "bad");
    ck_assert_uint_eq(err.line, 2);
    template_set_free(set);

    ck_assert_int_eq(template_set_new(NULL, &set), 0);
    ck_assert_int_eq(template_set_load_dir(set, "/nonexistent/drover", &err), -ENOENT);
    template_set_free(set);

    snprintf(path, sizeof(path), "%s/bad.mustache", sub);
    unlink(path);
    snprintf(path, sizeof(path), "%s/part.mustache", sub);
    unlink(path);
    rmdir(sub);
    snprintf(path, sizeof(path), "%s/main.mustache", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/notes.txt", dir);
    unlink(path);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("template");
    TCase *spec = tcase_create("spec");
    TCase *drover = tcase_create("drover");
    tcase_add_loop_test(spec, test_spec_case, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(drover, test_list_index);
    tcase_add_test(drover, test_filters_format_values);
    tcase_add_test(drover, test_default_filter_refuses_newline);
    tcase_add_test(drover, test_default_filter_refuses_space_and_comment);
    tcase_add_test(drover, test_filter_refusal_names_filter_and_position);
    tcase_add_test(drover, test_partial_error_names_partial);
    tcase_add_test(drover, test_non_scalar_interpolation_refused);
    tcase_add_test(drover, test_strict_variables);
    tcase_add_test(drover, test_missing_value_still_filtered);
    tcase_add_test(drover, test_parse_errors);
    tcase_add_test(drover, test_section_nesting_limit);
    tcase_add_test(drover, test_unknown_partial);
    tcase_add_test(drover, test_partial_recursion_limit);
    tcase_add_test(drover, test_output_and_step_limits);
    tcase_add_test(drover, test_failed_render_keeps_buffer);
    tcase_add_test(drover, test_set_names);
    tcase_add_test(drover, test_error_format);
    tcase_add_test(drover, test_load_dir);
    suite_add_tcase(s, spec);
    suite_add_tcase(s, drover);
    return suite_main_run(s);
}
