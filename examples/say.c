/* say.c — the seed's first goroutine (../shared/seed: say and runtime.Gosched), in ringo.
 *
 *     package main
 *     import(
 *         "fmt"
 *         "runtime"
 *     )
 *
 *     func say(msg string) {
 *         for i:=0; i<5; i++ {
 *             runtime.Gosched()
 *             fmt.Println(msg)
 *             // time.sleep(1*time.Second)
 *         }
 *     }
 *
 *     func main() {
 *         go say("world") //开一个新的Goroutines执行
 *         say("hello") //当前Goroutines执行
 *     }
 *     //每次输出的结果不同，但是hello每次都可以保证输出5次，不论顺序。而world极端情况没有输出,是因为在另外一个goroutines中输出。
 *
 * Output: "hello" exactly 5 times and "world" 0 to 5 times, in any interleaving. Go's main does
 * not wait for the "world" goroutine: when say("hello") returns, main returns and the process
 * ends, whatever "world" has printed so far.
 *
 * The translation. Go's main is itself a goroutine (goroutine 1) and the program ends when it
 * returns; C's main() is a plain thread. So main() starts Go's main as a goroutine (go_main,
 * the first goroutine: id 1) and leaves with ringo_exit (Go's Goexit in main: the goroutines
 * run on), and go_main ends the process with exit(0) when it is done, as Go's runtime does after
 * main.main returns: the "world" goroutine is cut short exactly as in Go. fmt.Println is one
 * write(2) to fd 1 (Go does not buffer os.Stdout), and so is println here: a line is printed
 * whole or not at all when exit(0) comes while "world" prints. (Not printf: stdio's buffer is
 * flushed by exit underneath a thread still writing to it, and even unbuffered, glibc may write
 * "world" and "\n" apart: the process could end between the two.)
 *
 * With RINGO_PROCS=1 both goroutines share one worker and each ringo_yield (runtime.Gosched)
 * hands it to the other one, so the output is fixed, one of those Go can print: world, hello,
 * world, ..., hello (examples/say_procs1.expected; go_main's last "hello" comes after the fifth
 * "world" here, so all five are printed).
 */
#include <ringo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* fmt.Println(msg): the line in one write(2) */
static void println(const char *msg)
{
    char line[64];
    size_t n = strlen(msg);
    if (n > sizeof line - 1)
        n = sizeof line - 1;
    memcpy(line, msg, n);
    line[n++] = '\n';
    (void)!write(1, line, n);
}

static void say(void *msg)
{
    for (int i = 0; i < 5; i++) {
        ringo_yield(); /* runtime.Gosched(): let the other goroutine run */
        println(msg);
    }
}

static void go_main(void *unused)
{
    (void)unused;
    ringo_go(say, "world"); /* go say("world") */
    say("hello");
    exit(0); /* main returns: the program ends, "world" or not */
}

int main(void)
{
    if (ringo_go(go_main, NULL) < 0) {
        perror("say");
        return 1;
    }
    ringo_exit();
}
