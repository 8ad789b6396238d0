use super::*;

#[test]
fn the_protocol_first_rest_only_where_nothing_else_exists() {
    let ma = Some(Dialect::MethodArgs);
    let (tc, sp, ar) = (
        Dialect::TypeContent,
        Dialect::SocketioPubsub,
        Dialect::ActionRequest,
    );
    assert_eq!(how(Setup::Auto, &[tc, sp], true, None), Ok(How::Nothing));
    assert_eq!(
        how(Setup::Auto, &[tc, ar], true, ma),
        Ok(How::Protocol(Dialect::MethodArgs))
    );
    assert_eq!(how(Setup::Auto, &[ar, ar], true, None), Ok(How::Rest));
    assert!(how(Setup::Protocol, &[ar, ar], true, None).is_err());
    assert_eq!(how(Setup::Rest, &[tc, tc], true, ma), Ok(How::Rest));
    assert_eq!(how(Setup::Auto, &[tc], false, None), Ok(How::Rest));
}
